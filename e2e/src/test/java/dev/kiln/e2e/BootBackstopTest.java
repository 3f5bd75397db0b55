package dev.kiln.e2e;

import dev.kiln.controller.fleet.AgentUserData;
import dev.kiln.controller.pki.FleetCa;
import dev.kiln.controller.pki.IssuedCertificate;
import dev.kiln.testkit.FreePorts;
import dev.kiln.testkit.MetadataMock;
import dev.kiln.testkit.Prerequisites;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.time.Instant;
import java.time.LocalDateTime;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The image's boot backstop (systemd/kiln-boot-backstop): at boot, with nothing of the agent, it
 * arms the timer that ends the instance, at the lease the user data names, else a fallback.
 *
 * <p>It runs against the real metadata mock on loopback, with user data written by the
 * controller's own code. The one stand-in is the program that arms the timer: systemd is not
 * PID 1 here, so {@code systemd-run} cannot create a timer; a recorder takes the time it would
 * be given (the script's KILN_BOOT_BACKSTOP_ARM), and systemd-run's part is covered by
 * {@code systemd-analyze verify} of the unit in ProvisionInChrootTest.
 */
class BootBackstopTest {

    static final Path SCRIPT = ImageAndUnitTest.ROOT.resolve("systemd/kiln-boot-backstop");
    static final DateTimeFormatter WHEN = DateTimeFormatter.ofPattern("yyyy-MM-dd HH:mm:ss 'UTC'");

    @TempDir
    Path dir;
    Path armed;
    Path recorder;
    Path state;

    @BeforeEach
    void setUp() throws Exception {
        Prerequisites.requireCommand("curl", "apt-get install curl");
        armed = dir.resolve("armed.txt");
        recorder = dir.resolve("arm");
        Files.writeString(recorder, "#!/bin/sh\necho \"$1\" >> '" + armed + "'\n");
        Files.setPosixFilePermissions(recorder, PosixFilePermissions.fromString("rwxr-xr-x"));
        state = Files.createDirectories(dir.resolve("state"));
    }

    /** Runs the script against {@code imds}; returns its run. */
    ImageAndUnitTest.Result backstop(String imds) {
        ImageAndUnitTest.Result r = ImageAndUnitTest.run(List.of("/bin/sh", SCRIPT.toString()), Map.of(
                "KILN_BOOT_BACKSTOP_IMDS", imds, "KILN_BOOT_BACKSTOP_ARM", recorder.toString(),
                "KILN_BOOT_BACKSTOP_STATE", state.toString()), dir, Duration.ofSeconds(90));
        assertEquals(0, r.exitCode(), r.toString());
        return r;
    }

    /** When the recorder was told to power off, as an instant. */
    Instant armedAt() throws Exception {
        List<String> lines = Files.readAllLines(armed);
        assertEquals(1, lines.size(), "armed once: " + lines);
        return LocalDateTime.parse(lines.get(0), WHEN).toInstant(ZoneOffset.UTC);
    }

    static void assertAround(Instant expected, Instant actual) {
        assertTrue(Math.abs(Duration.between(expected, actual).toSeconds()) <= 90, "expected about " + expected + ", got " + actual);
    }

    /** User data as `kiln launch` writes it, with this lease. */
    static String userData(Duration ttl) throws Exception {
        FleetCa ca = FleetCa.create("test fleet", Instant.now().minus(Duration.ofHours(1)), Instant.now().plus(Duration.ofDays(30)));
        Instant now = Instant.now();
        IssuedCertificate cert = ca.issueServer("kiln-agent i-1", List.of("localhost"), List.of("127.0.0.1"),
                now.minus(Duration.ofMinutes(5)), now.plus(Duration.ofDays(1)));
        return AgentUserData.yaml(cert, ca, 7443, ttl, Duration.ofHours(12));
    }

    @Test
    void armsTheTimerAtTheUserDatasLeasePlusTheGrace() throws Exception {
        try (MetadataMock imds = MetadataMock.builder().userData(userData(Duration.ofHours(2))).start()) {
            Instant before = Instant.now();
            ImageAndUnitTest.Result r = backstop(imds.endpoint().toString());
            assertAround(before.plus(Duration.ofHours(2)).plusSeconds(600), armedAt());
            assertTrue(r.stderr().contains("kiln.lease.ttl 7200s from the user data"), r.toString());
        }
    }

    @Test
    void aDeadlineTheAgentPersistedComesFirst() throws Exception {
        Instant deadline = Instant.now().plus(Duration.ofHours(5)).truncatedTo(java.time.temporal.ChronoUnit.SECONDS);
        Files.writeString(state.resolve("lease.properties"), "start=" + Instant.now() + "\ndeadline=" + deadline + "\n");
        try (MetadataMock imds = MetadataMock.builder().userData(userData(Duration.ofHours(1))).start()) {
            backstop(imds.endpoint().toString());
            assertEquals(deadline.plusSeconds(600), armedAt());
        }
    }

    @Test
    void withoutImdsItFallsBack() throws Exception {
        Instant before = Instant.now();
        ImageAndUnitTest.Result r = backstop("http://127.0.0.1:" + FreePorts.loopbackPort());
        assertTrue(armedAt().isAfter(before.plusSeconds(1800 - 90)) && armedAt().isBefore(Instant.now().plusSeconds(1800 + 90)),
                "the fallback: " + armedAt());
        assertTrue(r.stderr().contains("no user data from IMDS"), r.toString());
    }

    @Test
    void userDataItCannotReadFallsBack() throws Exception {
        try (MetadataMock imds = MetadataMock.builder().userData("kiln: [this is: not, a lease\n").start()) {
            Instant before = Instant.now();
            ImageAndUnitTest.Result r = backstop(imds.endpoint().toString());
            assertAround(before.plusSeconds(1800), armedAt());
            assertTrue(r.stderr().contains("names no usable kiln.lease.ttl"), r.toString());
        }
    }

    @Test
    void aForeverLeaseArmsNothing() throws Exception {
        try (MetadataMock imds = MetadataMock.builder().userData("kiln:\n  lease:\n    forever: true\n").start()) {
            ImageAndUnitTest.Result r = backstop(imds.endpoint().toString());
            assertFalse(Files.exists(armed), "no timer for a lease without end");
            assertTrue(r.stderr().contains("kiln.lease.forever is true"), r.toString());
        }
    }

    @Test
    void theScriptPassesShellcheck() {
        Path shellcheck = Prerequisites.requireCommand("shellcheck", "apt-get install shellcheck");
        ImageAndUnitTest.Result r = ImageAndUnitTest.run(List.of(shellcheck.toString(), SCRIPT.toString()), Map.of(), dir,
                Duration.ofSeconds(60));
        assertEquals(0, r.exitCode(), r.toString());
    }
}
