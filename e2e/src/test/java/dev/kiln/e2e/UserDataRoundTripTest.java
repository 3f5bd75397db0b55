package dev.kiln.e2e;

import dev.kiln.agent.instance.UserData;
import dev.kiln.controller.ExitCodes;
import dev.kiln.controller.KilnException;
import dev.kiln.controller.config.KilnPaths;
import dev.kiln.controller.fleet.AgentUserData;
import dev.kiln.controller.fleet.InstanceLayout;
import dev.kiln.controller.local.LocalAgent;
import dev.kiln.controller.pki.FleetCa;
import dev.kiln.controller.pki.IssuedCertificate;
import dev.kiln.controller.pki.Pem;
import io.micronaut.context.env.yaml.YamlPropertySourceLoader;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.io.ByteArrayInputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The contract between {@code kiln launch} and kiln-agent on user data: whatever a volume role,
 * volume id, device, path, SSH key comment, profile or command argument holds, the agent's own
 * parser ({@link UserData}) reads back from the controller's writer ({@link AgentUserData})
 * exactly the text that went in, with not one key more or less.
 */
class UserDataRoundTripTest {

    private static final Instant NOW = Instant.now();
    private static final FleetCa CA = FleetCa.create("kiln round-trip CA", NOW.minus(Duration.ofMinutes(5)),
            NOW.plus(Duration.ofDays(1)));
    private static final IssuedCertificate CERT = CA.issueServer("agent-0a1b2c.kiln.internal",
            List.of("agent-0a1b2c.kiln.internal"), List.of(), NOW.minus(Duration.ofMinutes(5)), NOW.plus(Duration.ofDays(1)));
    private static final String KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl ";

    /** A plain name first (the baseline), then text that means something else to YAML 1.1 or to pasted text. */
    /** The values a file system path can hold: all but those with NUL. */
    static Stream<String> pathValues() {
        return values().filter(v -> v.indexOf('\0') < 0);
    }

    static Stream<String> values() {
        return Stream.of("sources",
                // YAML 1.1 booleans, null, numbers, dates, merge key
                "no", "yes", "on", "off", "No", "TRUE", "y", "null", "~", "", "1e3", "0x10", "0o17", "017", "1_000", "-1",
                ".inf", ".NaN", "2024-01-01", "12:30:00", "<<", "=",
                // indicators and structure
                "a: b", "key: value", "a:b", "# comment", "x # not a comment", "-", "- item", "--- ", "...", "? q",
                "[list]", "{map: 1}", "&anchor", "*alias", "!tag", "!!binary aGk=", "%YAML 1.1", "@", "`", "|", ">",
                "'single'", "\"double\"", "'", "\"", "\\", "\\n", ",", "a, b",
                // line breaks that would start a new key, and whitespace at the ends
                "line\nbreak", "x\n  mode: local", "x\nkiln:\n  mode: local", "x\n      - mount-point: /", "trailing\n",
                "two trailing\n\n", "\nleading", " ", " leading space", "trailing space ", "tab\there", "\t",
                "cr\rlf", "crlf\r\n", "nel\u0085x", "ls\u2028ps\u2029",
                // other characters
                "nul\u0000", "bell\u0007", "del\u007F", "c1\u0090", "bom\uFEFF", "é ü ß", "日本語", "\uD83D\uDD25 fire",
                "rtl\u202Eevil", "zero\u200Bwidth", "${HOME}", "x".repeat(300));
    }

    @ParameterizedTest(name = "[{index}] {0}")
    @MethodSource("values")
    void theAgentReadsBackExactlyWhatLaunchWrote(String v) {
        InstanceLayout.Volume volume = new InstanceLayout.Volume(v, v, "/dev/" + v, true);
        InstanceLayout layout = new InstanceLayout(List.of(
                new InstanceLayout.Mount(volume, "/mnt/" + v, List.of("ro", "noatime"), null, null),
                new InstanceLayout.Mount(null, "/srv/" + v, List.of(), "/mnt/" + v + "/lower", "/mnt/" + v + "/upper")),
                "/srv/" + v, "/srv/" + v + "/in", "/srv/" + v + "/out");
        String ownerKey = KEY + v + "\n";

        AgentUserData.BootBuild tup = new AgentUserData.BootBuild("/srv/" + v, List.of(v, "flac"), List.of());
        Map<String, Object> expected = expected(layout, ownerKey);
        expected.put("kiln.boot-build.work-tree", "/srv/" + v);
        expected.put("kiln.boot-build.profiles", List.of(v, "flac"));
        assertRoundTrip(expected, AgentUserData.yaml(CERT, CA, 7443, Duration.ofHours(2), Duration.ofHours(12),
                layout, ownerKey, tup));

        // A command build's argv comes last in the document, where a trailing newline is easiest to lose.
        AgentUserData.BootBuild command = new AgentUserData.BootBuild("/srv/" + v, List.of(), List.of("/bin/sh", "-c", v));
        expected = expected(layout, ownerKey);
        expected.put("kiln.boot-build.work-tree", "/srv/" + v);
        expected.put("kiln.boot-build.command", List.of("/bin/sh", "-c", v));
        assertRoundTrip(expected, AgentUserData.yaml(CERT, CA, 7443, Duration.ofHours(2), Duration.ofHours(12),
                layout, ownerKey, command));
    }

    /** A map key (a build label's name, say) stays one key with its own value, whatever it holds. */
    @ParameterizedTest(name = "[{index}] {0}")
    @MethodSource("values")
    void aKeyStaysOneKeyWhateverItHolds(String v) {
        Map<String, Object> labels = new LinkedHashMap<>();
        labels.put(v, v);
        labels.put("after", "kept");
        Map<String, Object> bootBuild = new LinkedHashMap<>();
        bootBuild.put("work-tree", "/w");
        bootBuild.put("labels", labels);
        String yaml = AgentUserData.write("labels", new LinkedHashMap<>(Map.of("boot-build", bootBuild)));
        Map<String, Object> expected = new LinkedHashMap<>();
        expected.put("kiln.boot-build.work-tree", "/w");
        expected.put("kiln.boot-build.labels." + v, v);
        expected.put("kiln.boot-build.labels.after", "kept");
        assertRoundTrip(expected, yaml);
    }

    /**
     * A local agent's agent.yml, which the agent reads through Micronaut's YAML loader (YAML 1.1,
     * unlike its user data parser): its directory, and so every path in it, may hold anything too.
     */
    @ParameterizedTest(name = "[{index}] {0}")
    @MethodSource("pathValues")
    void aLocalAgentReadsItsSettingsFileAsWritten(String v) throws Exception {
        Path dir = Path.of("/var/lib/kiln " + v + "/fleet/instances/local-0a1b2c3d");
        KilnPaths paths = new KilnPaths(Path.of("/home/" + v + "/.config/kiln"), Path.of("/home/" + v + "/.local/state/kiln"));
        String keys = paths.sshPublicKey().toString();
        Map<String, Object> kiln = new LocalAgent(paths, dir).settings(40123);
        InstanceLayout layout = InstanceLayout.plan(dir.toString(), "worker",
                List.of(new InstanceLayout.Volume("builds", "", dir + "/loop " + v, true)));
        kiln.putAll(AgentUserData.sections(Duration.ofMinutes(90), Duration.ofHours(3), layout,
                new AgentUserData.Ssh("127.0.0.1", 0, keys, keys), new AgentUserData.BootBuild(layout.workTree() + "/" + v,
                        List.of(v), List.of())));
        String yaml = AgentUserData.write("kiln-agent settings, written by `kiln launch` (local provider)", kiln);

        Map<String, Object> read;
        try (var in = new ByteArrayInputStream(yaml.getBytes(StandardCharsets.UTF_8))) {
            read = new YamlPropertySourceLoader().read("agent.yml", in);
        }
        Map<String, Object> expected = new LinkedHashMap<>();
        expected.put("kiln.mode", "local");
        expected.put("kiln.state-dir", dir + "/state");
        expected.put("kiln.grpc.host", "127.0.0.1");
        expected.put("kiln.grpc.port", 40123);
        expected.put("kiln.tls.cert", dir + "/agent.crt");
        expected.put("kiln.tls.key", dir + "/agent.key");
        expected.put("kiln.tls.ca", dir + "/fleet-ca.crt");
        expected.put("kiln.lease.ttl", "5400s");
        expected.put("kiln.lease.max-lifetime", "10800s");
        expected.put("kiln.volumes.mounts", List.of(Map.of("device", dir + "/loop " + v, "mount-point", dir + "/mnt/builds",
                "options", "noatime", "format", true, "label", "builds")));
        expected.put("kiln.ssh.enabled", true);
        expected.put("kiln.ssh.host", "127.0.0.1");
        expected.put("kiln.ssh.port", 0);
        expected.put("kiln.ssh.owner-keys", keys);
        expected.put("kiln.ssh.reader-keys", keys);
        expected.put("kiln.ssh.outputs", dir + "/mnt/builds/work");
        expected.put("kiln.ssh.sources", dir + "/mnt/builds/work");
        expected.put("kiln.boot-build.work-tree", dir + "/mnt/builds/work/" + v);
        expected.put("kiln.boot-build.profiles", List.of(v));
        assertEquals(expected, read, () -> "agent.yml:\n" + yaml);
    }

    @Test
    void refusesUserDataLargerThanEc2Takes() {
        String bigKeys = (KEY + "key\n").repeat(200);
        KilnException e = assertThrows(KilnException.class, () -> AgentUserData.yaml(CERT, CA, 7443, Duration.ofHours(2),
                Duration.ofHours(12), InstanceLayout.plan("", "worker", List.of(new InstanceLayout.Volume("builds",
                        "vol-0123456789abcdef0", "/dev/sdf", true))), bigKeys, null));
        assertEquals(ExitCodes.USAGE, e.exitCode());
        assertTrue(e.getMessage().matches("the agent's settings come to \\d+ bytes of user data; EC2 takes at most 16384"
                + " \\(fewer volumes, services or labels, a shorter SSH key file, boot command or boot script\\)"), e.getMessage());
        String fits = AgentUserData.yaml(CERT, CA, 7443, Duration.ofHours(2), Duration.ofHours(12), null, KEY + "me@laptop", null);
        assertTrue(fits.getBytes(StandardCharsets.UTF_8).length <= AgentUserData.MAX_BYTES, "a plain launch fits");
    }

    /** Everything but the boot build, as the agent's parser flattens it. */
    private static Map<String, Object> expected(InstanceLayout layout, String ownerKey) {
        Map<String, Object> s = new LinkedHashMap<>();
        s.put("kiln.mode", "ec2");
        s.put("kiln.grpc.host", "0.0.0.0");
        s.put("kiln.grpc.port", "7443");
        s.put("kiln.tls.cert", CERT.certificatePem());
        s.put("kiln.tls.key", CERT.privateKeyPem());
        s.put("kiln.tls.ca", Pem.encode(CA.certificate()));
        s.put("kiln.lease.ttl", "7200s");
        s.put("kiln.lease.max-lifetime", "43200s");
        InstanceLayout.Mount disk = layout.mounts().get(0);
        InstanceLayout.Mount overlay = layout.mounts().get(1);
        Map<String, Object> first = new LinkedHashMap<>();
        if (!disk.volume().volumeId().isEmpty()) {
            first.put("volume-id", disk.volume().volumeId());
        }
        first.put("device", disk.volume().device());
        first.put("mount-point", disk.mountPoint());
        first.put("options", "ro,noatime");
        first.put("format", "true");
        String role = disk.volume().role();
        first.put("label", role.length() > 12 ? role.substring(0, 12) : role);
        s.put("kiln.volumes.mounts", List.of(first, Map.of("mount-point", overlay.mountPoint(),
                "lower-dir", overlay.lowerDir(), "upper-dir", overlay.upperDir())));
        s.put("kiln.ssh.enabled", "true");
        s.put("kiln.ssh.owner-keys", ownerKey);
        s.put("kiln.ssh.outputs", layout.outputs());
        s.put("kiln.ssh.sources", layout.sources());
        return s;
    }

    private static void assertRoundTrip(Map<String, Object> expected, String userData) {
        Map<String, Object> read = assertDoesNotThrow(() -> UserData.settings(userData).orElseThrow(),
                () -> "the agent cannot read this user data:\n" + userData);
        assertEquals(expected, read, () -> "user data:\n" + userData);
    }
}
