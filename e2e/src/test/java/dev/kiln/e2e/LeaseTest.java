package dev.kiln.e2e;

import dev.kiln.controller.pki.FleetCa;
import dev.kiln.controller.pki.IssuedCertificate;
import dev.kiln.controller.pki.Pem;
import dev.kiln.proto.agent.v1.Build;
import dev.kiln.proto.agent.v1.BuildState;
import dev.kiln.testkit.FreePorts;
import dev.kiln.testkit.MetadataMock;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Every way an instance ends, on a real agent process: the IMDS notices served by AWS's
 * amazon-ec2-metadata-mock, the deadline, and what survives a crash. The agent "powers off" by
 * ending its process (kiln.lease.power-off: exit) and arms its backstop through a recording
 * command (kiln.lease.backstop: command), since systemd is not PID 1 here.
 */
class LeaseTest {

    static final Pattern STEP = Pattern.compile("^(\\S+) INFO .* - (.*?) \\(\\+([0-9.]+)s\\)$");

    @TempDir
    Path dir;

    Kiln kiln;
    FleetCa ca;
    Path armed;
    Path recorder;
    int port;

    @BeforeEach
    void setUp() throws Exception {
        kiln = new Kiln(dir.resolve("home"));
        assertEquals(0, kiln.run("init").exitCode());
        ca = FleetCa.load(kiln.configDir().resolve("fleet-ca.crt"), kiln.configDir().resolve("fleet-ca.key"));
        armed = dir.resolve("armed.txt");
        recorder = dir.resolve("arm-backstop");
        Files.writeString(recorder, "#!/bin/sh\necho \"$1\" >> '" + armed + "'\n");
        Files.setPosixFilePermissions(recorder, PosixFilePermissions.fromString("rwxr-xr-x"));
        port = FreePorts.loopbackPort();
    }

    Path settings(String mode, String imdsEndpoint, String lease) throws Exception {
        Instant now = Instant.now();
        IssuedCertificate cert = ca.issueServer("agent", List.of("localhost"), List.of("127.0.0.1"),
                now.minus(Duration.ofMinutes(5)), now.plus(Duration.ofDays(1)));
        Pem.writePublic(dir.resolve("agent.crt"), cert.certificatePem());
        Pem.writePrivate(dir.resolve("agent.key"), cert.privateKeyPem());
        Path file = dir.resolve("agent.yml");
        Files.writeString(file, """
                kiln:
                  mode: %s
                  state-dir: '%s'
                  grpc:
                    port: %d
                  tls:
                    cert: '%s'
                    key: '%s'
                    ca: '%s'
                  imds:
                    endpoint: %s
                  lease:
                    backstop: command
                    backstop-command: '%s'
                    backstop-grace: 10m
                    power-off: exit
                    imds-poll: 1s
                %s""".formatted(mode, dir.resolve("state"), port, dir.resolve("agent.crt"), dir.resolve("agent.key"),
                kiln.configDir().resolve("fleet-ca.crt"), imdsEndpoint == null ? "http://127.0.0.1:1" : imdsEndpoint,
                recorder, lease.indent(4)));
        return file;
    }

    String build(Path tree) {
        Kiln.Run r = kiln.run("build", "--agent", "127.0.0.1:" + port, "--detach", tree.toString(), "--",
                "sh", "-c", "echo working; sleep 300");
        assertEquals(0, r.exitCode(), r.toString());
        return r.out().trim();
    }

    Build record(String id) throws Exception {
        return Build.parseFrom(Files.readAllBytes(dir.resolve("state/builds").resolve(id).resolve("build.pb")));
    }

    /** The drain's steps from the agent log, as "+0.0s what" lines (printed for the record). */
    List<String> timeline(String name) throws Exception {
        List<String> steps = Files.readAllLines(dir.resolve("state/logs/agent.log"), StandardCharsets.UTF_8).stream()
                .map(STEP::matcher).filter(Matcher::matches).map(m -> "+" + m.group(3) + "s " + m.group(2)).toList();
        System.out.println("timeline " + name + ":");
        steps.forEach(s -> System.out.println("  " + s));
        return steps;
    }

    void endsWithin(AgentProcess agent, Duration budget, Instant trigger, String name) throws Exception {
        int code = agent.awaitExit(budget.plusSeconds(30));
        Instant end = Instant.now();
        assertEquals(0, code, agent.output());
        System.out.println(name + ": trigger to agent exit " + Duration.between(trigger, end).toMillis() + " ms");
        assertTrue(Duration.between(trigger, end).compareTo(budget) < 0, name + " took " + Duration.between(trigger, end));
    }

    void assertBuildStoppedWithCompleteLog(String id) throws Exception {
        assertEquals(BuildState.BUILD_STATE_CANCELLED, record(id).getState());
        assertEquals("working\n", Files.readString(dir.resolve("state/builds").resolve(id).resolve("log")));
    }

    @Test
    void aSpotInterruptionNoticeDrainsAndPowersOffWithinTheTwoMinutes() throws Exception {
        Path tree = LocalFleet.workTree(dir, "tree");
        try (MetadataMock imds = MetadataMock.builder().instanceId("i-0spot0000000000001")
                // Late enough that a slow, busy machine has the agent up and the build running first.
                .spotInterruption(MetadataMock.SpotAction.TERMINATE, Duration.ofSeconds(20)).start()) {
            Instant started = Instant.now();
            try (AgentProcess agent = AgentProcess.start(settings("ec2", imds.endpoint().toString(), "ttl: 1h"), Map.of())) {
                agent.awaitListening(Duration.ofSeconds(60));
                String id = build(tree);
                endsWithin(agent, Duration.ofMinutes(2), started.plusSeconds(20), "spot interruption");
                assertBuildStoppedWithCompleteLog(id);
                List<String> t = timeline("spot interruption");
                assertTrue(t.get(0).contains("draining: SPOT_INTERRUPTION"), t.toString());
                assertTrue(t.get(t.size() - 1).contains("powering off"), t.toString());
            }
        }
    }

    @Test
    void aRebalanceRecommendationDrainsWhenConfiguredTo() throws Exception {
        try (MetadataMock imds = MetadataMock.builder().instanceId("i-0rebalance00000001")
                .rebalanceRecommendation(Duration.ofSeconds(4)).start()) {
            Instant started = Instant.now();
            try (AgentProcess agent = AgentProcess.start(settings("ec2", imds.endpoint().toString(),
                    "ttl: 1h\nrebalance: drain"), Map.of())) {
                agent.awaitListening(Duration.ofSeconds(60));
                endsWithin(agent, Duration.ofMinutes(2), started.plusSeconds(4), "rebalance recommendation");
                assertTrue(timeline("rebalance recommendation").get(0).contains("draining: REBALANCE_RECOMMENDATION"));
            }
        }
    }

    @Test
    void aScheduledStopEventDrains() throws Exception {
        try (MetadataMock imds = MetadataMock.builder().instanceId("i-0scheduled00000001")
                .scheduledEvent("instance-stop", Duration.ofSeconds(4)).start()) {
            Instant started = Instant.now();
            try (AgentProcess agent = AgentProcess.start(settings("ec2", imds.endpoint().toString(), "ttl: 1h"), Map.of())) {
                agent.awaitListening(Duration.ofSeconds(60));
                endsWithin(agent, Duration.ofMinutes(2), started.plusSeconds(4), "scheduled event");
                assertTrue(timeline("scheduled event").get(0).contains("draining: SCHEDULED_EVENT"));
            }
        }
    }

    /** `kiln status` once it shows a problem row containing {@code text} (the agent polls IMDS each second). */
    Kiln.Run statusShowing(String text) throws Exception {
        Kiln.Run status = null;
        for (int n = 0; n < 60; n++) {
            status = kiln.run("status", "--agent", "127.0.0.1:" + port);
            if (status.exitCode() == 0 && status.out().contains(text)) {
                return status;
            }
            Thread.sleep(500);
        }
        throw new AssertionError("status never showed '" + text + "': " + status);
    }

    @Test
    void aLeaseWrittenInSeveralUnitsIsTheLeaseTheAgentKeeps() throws Exception {
        // The agent reads durations as the CLI does: 1h30m, not only one number and unit.
        try (AgentProcess agent = AgentProcess.start(settings("local", null, "ttl: 1h30m\nmax-lifetime: 1d12h"), Map.of())) {
            agent.awaitListening(Duration.ofSeconds(60));
            Kiln.Run status = statusShowing("deadline");
            assertTrue(status.out().matches("(?s).*\\bstate\\s+ready\n.*"), status.out());
            assertTrue(status.out().matches("(?s).*\\bdeadline\\s+\\S+ \\(in 1h(29|30)m\\)\n.*"), status.out());
        }
    }

    @Test
    void aScheduledStopDaysAwayIsReportedInStatusAndDoesNotDrainYet() throws Exception {
        Instant notBefore = Instant.now().plus(Duration.ofDays(3)).truncatedTo(java.time.temporal.ChronoUnit.SECONDS);
        try (MetadataMock imds = MetadataMock.builder().instanceId("i-0scheduled00000002")
                .scheduledEvent("instance-stop", Duration.ZERO, notBefore).start();
             AgentProcess agent = AgentProcess.start(settings("ec2", imds.endpoint().toString(), "ttl: 1h"), Map.of())) {
            agent.awaitListening(Duration.ofSeconds(60));
            Kiln.Run status = statusShowing("EC2 scheduled instance-stop at " + notBefore);
            assertTrue(status.out().matches("(?s).*problem\\s+EC2 scheduled instance-stop at " + notBefore
                    + ": the agent drains and ends the instance from \\S+ unless its lease ends it first\n.*"), status.out());
            Thread.sleep(3000); // several IMDS polls: still no drain
            assertTrue(agent.alive(), agent.output());
            Kiln.Run again = statusShowing("instance-stop");
            assertFalse(again.out().matches("(?s).*state\\s+draining\n.*"), again.out());
        }
    }

    @Test
    void aScheduledRebootIsReportedAndNeverEndsTheInstance() throws Exception {
        // The mock's NotBefore is its start time: the reboot is due now.
        try (MetadataMock imds = MetadataMock.builder().instanceId("i-0scheduled00000003")
                .scheduledEvent("system-reboot", Duration.ZERO).start();
             AgentProcess agent = AgentProcess.start(settings("ec2", imds.endpoint().toString(), "ttl: 1h"), Map.of())) {
            agent.awaitListening(Duration.ofSeconds(60));
            Kiln.Run status = statusShowing("EC2 scheduled system-reboot at ");
            assertTrue(status.out().contains(": the instance reboots and keeps its volumes and lease; the agent does not end it"),
                    status.out());
            Thread.sleep(3000);
            assertTrue(agent.alive(), agent.output());
            Kiln.Run again = statusShowing("system-reboot");
            assertFalse(again.out().matches("(?s).*state\\s+draining\n.*"), again.out());
            assertTrue(again.out().matches("(?s).*ends-by\\s+deadline\n.*"), again.out());
        }
    }

    @Test
    void theDeadlineReachedMidBuildEndsTheAgentCleanly() throws Exception {
        Path tree = LocalFleet.workTree(dir, "tree");
        Instant started = Instant.now();
        try (AgentProcess agent = AgentProcess.start(settings("local", null, "ttl: 25s"), Map.of())) {
            agent.awaitListening(Duration.ofSeconds(60));
            String id = build(tree);
            endsWithin(agent, Duration.ofSeconds(40), started.plusSeconds(25), "deadline");
            assertBuildStoppedWithCompleteLog(id);
            assertTrue(timeline("deadline").get(0).contains("draining: DEADLINE"));
        }
    }

    @Test
    void theDeadlineMidBuildOnAVolumeCancelsTheBuildAndUnmountsTheVolume() throws Exception {
        dev.kiln.testkit.Prerequisites.requireRoot("loop devices and mounts");
        Path sys = Files.createDirectories(dir.resolve("sys/block"));
        try (dev.kiln.testkit.LoopDevice disk = dev.kiln.testkit.LoopDevice.create(dir, 64L << 20)) {
            String name = disk.device().getFileName().toString();
            Files.createSymbolicLink(sys.resolve(name), Path.of("/sys/class/block", name).toRealPath());
            Path mp = dir.resolve("mnt/builds");
            Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwxr-xr-x"));
            Path file = settings("local", null, "ttl: 40s");
            Files.writeString(file, Files.readString(file) + """
                      volumes:
                        sysfs-root: '%s'
                        mounts:
                          - device: %s
                            mount-point: '%s'
                            format: true
                    """.formatted(dir.resolve("sys"), disk.device(), mp));
            Instant started = Instant.now();
            try (AgentProcess agent = AgentProcess.start(file, Map.of())) {
                agent.awaitListening(Duration.ofSeconds(60));
                assertTrue(mounted(mp), "the boot mount formatted the blank volume and mounted it");
                String id = build(mp); // the build runs in the volume, as the build user (who owns its root)
                endsWithin(agent, Duration.ofSeconds(60), started.plusSeconds(40), "deadline with a volume");
                assertBuildStoppedWithCompleteLog(id);
                assertTrue(!mounted(mp), "the volume was unmounted before power-off");
                List<String> t = timeline("deadline with a volume");
                assertTrue(t.stream().anyMatch(l -> l.contains("unmount volumes: unmounted " + mp)), t.toString());
            } finally {
                if (mounted(mp)) {
                    new ProcessBuilder("umount", mp.toString()).start().waitFor();
                }
            }
        }
    }

    static boolean mounted(Path mp) throws java.io.IOException {
        return Files.readAllLines(Path.of("/proc/self/mountinfo")).stream().anyMatch(l -> l.split(" ")[4].equals(mp.toString()));
    }

    @Test
    void aCrashAndRestartKeepTheDeadlineAndTheBackstopIsArmedForIt() throws Exception {
        try (MetadataMock imds = MetadataMock.builder().instanceId("i-0crash000000000001").start()) {
            Path file = settings("ec2", imds.endpoint().toString(), "ttl: 2h");
            Instant deadline;
            try (AgentProcess agent = AgentProcess.start(file, Map.of())) {
                agent.awaitListening(Duration.ofSeconds(60));
                deadline = deadline();
                agent.kill(); // kill -9: no shutdown hook runs
            }
            assertEquals(List.of(deadline.plus(Duration.ofMinutes(10)).toString()), Files.readAllLines(armed),
                    "the backstop was armed for deadline + grace before the crash");
            try (AgentProcess agent = AgentProcess.start(file, Map.of())) {
                agent.awaitListening(Duration.ofSeconds(60));
                assertEquals(deadline, deadline(), "the restarted agent keeps the deadline");
                Kiln.Run extend = kiln.run("extend", "30m", "--agent", "127.0.0.1:" + port);
                assertEquals(0, extend.exitCode(), extend.toString());
                assertEquals(deadline.plus(Duration.ofMinutes(30)), deadline());
                Kiln.Run tooFar = kiln.run("extend", "24h", "--agent", "127.0.0.1:" + port);
                assertEquals(5, tooFar.exitCode());
                assertTrue(tooFar.err().contains("the maximum lifetime ends at"), tooFar.err());
            }
            assertEquals(List.of(deadline.plus(Duration.ofMinutes(10)).toString(), deadline.plus(Duration.ofMinutes(10)).toString(),
                    deadline.plus(Duration.ofMinutes(40)).toString()), Files.readAllLines(armed), "re-armed at start and on extend");
        }
    }

    Instant deadline() throws Exception {
        Kiln.Run s = kiln.run("status", "--agent", "127.0.0.1:" + port, "-o", "json");
        assertEquals(0, s.exitCode(), s.toString());
        Matcher m = Pattern.compile("\"deadline\": \"([^\"]+)\"").matcher(s.out());
        assertTrue(m.find(), s.out());
        return Instant.parse(m.group(1));
    }

    @Test
    void ec2ModeWithoutATtlRunsDegradedAndItsFallbackLeaseStillEndsIt() throws Exception {
        // No lease in the settings: the agent does not exit (systemd would not restart it and no
        // backstop would be armed); it says why, arms its backstop and ends on the fallback lease.
        try (MetadataMock imds = MetadataMock.builder().instanceId("i-0nottl000000000001").start();
             AgentProcess agent = AgentProcess.start(settings("ec2", imds.endpoint().toString(), ""),
                     Map.of("KILN_LEASE_FALLBACK_TTL", "5s"))) {
            assertEquals(0, agent.awaitExit(Duration.ofSeconds(60)), agent.output());
            assertTrue(agent.output().contains("kiln.lease.ttl is not set: in ec2 mode every instance needs a lease"),
                    agent.output());
            assertTrue(agent.output().contains("runs degraded") && agent.output().contains("backstop armed"), agent.output());
        }
    }

    @Test
    void kilnStopDrainsAndTheAgentLogShowsEveryStepToTheEnd() throws Exception {
        try (AgentProcess agent = AgentProcess.start(settings("local", null, ""), Map.of())) {
            agent.awaitListening(Duration.ofSeconds(60));
            java.io.ByteArrayOutputStream log = new java.io.ByteArrayOutputStream();
            var follow = java.util.concurrent.CompletableFuture.supplyAsync(
                    () -> kiln.run(log, "logs", "-f", "agent", "--agent", "127.0.0.1:" + port));
            Thread.sleep(1000);
            Instant asked = Instant.now();
            Kiln.Run stop = kiln.run("stop", "--agent", "127.0.0.1:" + port, "--reason", "test");
            assertEquals(0, stop.exitCode(), stop.toString());
            endsWithin(agent, Duration.ofSeconds(30), asked, "kiln stop");
            Kiln.Run followed = follow.get(60, java.util.concurrent.TimeUnit.SECONDS);
            assertEquals(0, followed.exitCode(), followed.err());
            assertTrue(log.toString().contains("draining: SHUTDOWN_REQUESTED (test)"), log.toString());
            assertTrue(log.toString().contains("powering off (end the agent process)"), log.toString());
            timeline("kiln stop");
        }
    }
}
