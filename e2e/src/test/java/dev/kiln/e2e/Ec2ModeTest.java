package dev.kiln.e2e;

import com.google.protobuf.util.JsonFormat;
import dev.kiln.controller.pki.FleetCa;
import dev.kiln.controller.pki.IssuedCertificate;
import dev.kiln.proto.agent.v1.Mode;
import dev.kiln.proto.agent.v1.StatusResponse;
import dev.kiln.testkit.FreePorts;
import dev.kiln.testkit.MetadataMock;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The agent in ec2 mode against AWS's amazon-ec2-metadata-mock, started IMDSv2-only (plain GETs
 * without a token get 401), so an agent that fell back to IMDSv1 could not start at all.
 */
class Ec2ModeTest {

    static final String INSTANCE_ID = "i-0a1b2c3d4e5f60718";

    @TempDir
    Path dir;

    Kiln kiln;
    FleetCa ca;

    @BeforeEach
    void initController() throws Exception {
        kiln = new Kiln(dir.resolve("home"));
        Kiln.Run init = kiln.run("init");
        assertEquals(0, init.exitCode(), init.toString());
        ca = FleetCa.load(kiln.configDir().resolve("fleet-ca.crt"), kiln.configDir().resolve("fleet-ca.key"));
    }

    /** User data as `kiln launch` writes it: settings with the TLS material inline. */
    private String userData(int port) {
        return userData(ca, INSTANCE_ID, port, "  lease:\n    ttl: 1h\n");
    }

    /**
     * User data with an agent certificate for 127.0.0.1 from {@code ca}, the TLS material inline
     * and gRPC on {@code port}, plus {@code more} (lines under {@code kiln:}, indented by two).
     */
    static String userData(FleetCa ca, String instanceId, int port, String more) {
        Instant now = Instant.now();
        IssuedCertificate cert = ca.issueServer("kiln-agent " + instanceId, List.of("localhost"), List.of("127.0.0.1"),
                now.minus(Duration.ofMinutes(5)), now.plus(Duration.ofDays(1)));
        return userDataWith(cert, ca, port, more);
    }

    /** User data with {@code cert} and its key inline, gRPC on {@code port} (0: left to the agent's settings), plus {@code more}. */
    static String userDataWith(IssuedCertificate cert, FleetCa ca, int port, String more) {
        return "kiln:\n"
                + (port == 0 ? "" : "  grpc:\n    port: " + port + "\n")
                + "  tls:\n"
                + "    cert: |\n" + indent(cert.certificatePem())
                + "    key: |\n" + indent(cert.privateKeyPem())
                + "    ca: |\n" + indent(dev.kiln.controller.pki.Pem.encode(ca.certificate()))
                + more;
    }

    private static String indent(String pem) {
        return pem.lines().map(l -> "      " + l + "\n").reduce("", String::concat);
    }

    private Path settings(String imdsEndpoint, int filePort) throws Exception {
        Path file = dir.resolve("agent.yml");
        Files.writeString(file, """
                kiln:
                  mode: ec2
                  state-dir: '%s'
                  grpc:
                    host: 127.0.0.1
                    port: %d
                  imds:
                    endpoint: %s
                    timeout: 20s
                """.formatted(dir.resolve("state"), filePort, imdsEndpoint));
        return file;
    }

    @Test
    void kilnStatusShowsTheInstanceIdentityReadFromImdsV2() throws Exception {
        int filePort = FreePorts.loopbackPort();
        int userDataPort = FreePorts.loopbackPort();
        try (MetadataMock imds = MetadataMock.builder().instanceId(INSTANCE_ID).region("eu-west-1")
                .userData(userData(userDataPort)).start();
             AgentProcess agent = AgentProcess.start(settings(imds.endpoint().toString(), filePort), Map.of())) {
            int port = agent.awaitListening(Duration.ofSeconds(60));
            assertEquals(userDataPort, port, "user data overrides the config file; output:\n" + agent.output());

            Kiln.Run table = kiln.run("status", "--agent", "127.0.0.1:" + port);
            assertEquals(0, table.exitCode(), table.toString());
            assertTrue(table.out().matches("(?s).*instance\\s+" + INSTANCE_ID + "\n.*"), table.out());
            assertTrue(table.out().matches("(?s).*mode\\s+ec2\n.*"), table.out());
            assertTrue(table.out().matches("(?s).*region\\s+eu-west-1\n.*"), table.out());

            Kiln.Run json = kiln.run("status", "--agent", "127.0.0.1:" + port, "-o", "json");
            assertEquals(0, json.exitCode(), json.toString());
            StatusResponse.Builder status = StatusResponse.newBuilder();
            JsonFormat.parser().merge(json.out(), status);
            assertEquals(INSTANCE_ID, status.getInstanceId());
            assertEquals(Mode.MODE_EC2, status.getMode());
            assertEquals("eu-west-1", status.getRegion());
        }
    }

    @Test
    void environmentOverridesUserData() throws Exception {
        int userDataPort = FreePorts.loopbackPort();
        int envPort = FreePorts.loopbackPort();
        try (MetadataMock imds = MetadataMock.builder().instanceId(INSTANCE_ID).userData(userData(userDataPort)).start();
             AgentProcess agent = AgentProcess.start(settings(imds.endpoint().toString(), FreePorts.loopbackPort()),
                     Map.of("KILN_GRPC_PORT", Integer.toString(envPort)))) {
            assertEquals(envPort, agent.awaitListening(Duration.ofSeconds(60)), agent.output());
        }
    }

    @Test
    void stopsWithAClearMessageWhenImdsCannotBeReached() throws Exception {
        Path file = dir.resolve("agent.yml");
        String endpoint = "http://127.0.0.1:" + FreePorts.loopbackPort();
        Files.writeString(file, "kiln:\n  mode: ec2\n  imds:\n    endpoint: " + endpoint + "\n    timeout: 2s\n");
        try (AgentProcess agent = AgentProcess.start(file, Map.of())) {
            assertEquals(69, agent.awaitExit(Duration.ofSeconds(60)), agent.output());
            assertTrue(agent.output().contains("cannot read instance identity from IMDSv2 at " + endpoint + " within PT2S"),
                    agent.output());
        }
    }

    @Test
    void anUnknownSettingInUserDataIsReportedAndTheAgentStillEndsOnALease() throws Exception {
        // Exiting 78 would leave the instance running forever; the agent runs degraded instead
        // (BootTest has the details) and ends on the fallback lease.
        try (MetadataMock imds = MetadataMock.builder().instanceId(INSTANCE_ID)
                .userData("kiln:\n  grpc:\n    prot: 7443\n").start();
             AgentProcess agent = AgentProcess.start(settings(imds.endpoint().toString(), 0), Map.of(
                     "KILN_LEASE_FALLBACK_TTL", "3s", "KILN_LEASE_BACKSTOP", "none", "KILN_LEASE_POWER_OFF", "exit"))) {
            assertEquals(0, agent.awaitExit(Duration.ofSeconds(60)), agent.output());
            assertTrue(agent.output().contains("unknown setting 'kiln.grpc.prot' in EC2 user data; did you mean 'kiln.grpc.port'?"),
                    agent.output());
        }
    }

    /** A backstop command that records each time it is armed, in {@code armed}. */
    private Path recorder(Path armed) throws Exception {
        Path recorder = dir.resolve("arm-backstop");
        Files.writeString(recorder, "#!/bin/sh\necho \"$1\" >> '" + armed + "'\n");
        Files.setPosixFilePermissions(recorder, java.nio.file.attribute.PosixFilePermissions.fromString("rwxr-xr-x"));
        return recorder;
    }

    /** The environment of an agent whose lease ends soon and whose backstop is {@code recorder}. */
    private static Map<String, String> onALease(Path recorder) {
        return Map.of("KILN_LEASE_BACKSTOP", "command", "KILN_LEASE_BACKSTOP_COMMAND", recorder.toString(),
                "KILN_LEASE_POWER_OFF", "exit");
    }

    @Test
    void anSshServerThatCannotStartIsReportedAndTheInstanceStillEndsOnItsLease() throws Exception {
        Path outputs = Files.createDirectories(dir.resolve("outputs"));
        Path armed = dir.resolve("armed.txt");
        try (java.net.ServerSocket taken = new java.net.ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
            int port = FreePorts.loopbackPort();
            String ssh = "  lease:\n    ttl: 20s\n  ssh:\n    enabled: true\n    host: 127.0.0.1\n    port: "
                    + taken.getLocalPort() + "\n    outputs: '" + outputs + "'\n";
            try (MetadataMock imds = MetadataMock.builder().instanceId(INSTANCE_ID).userData(userData(ca, INSTANCE_ID, port, ssh)).start();
                 AgentProcess agent = AgentProcess.start(settings(imds.endpoint().toString(), 0), onALease(recorder(armed)))) {
                assertEquals(port, agent.awaitListening(Duration.ofSeconds(60)), agent.output());
                Kiln.Run status = kiln.run("status", "--agent", "127.0.0.1:" + port);
                assertTrue(status.out().contains("not serving over SSH: cannot start the SSH server: cannot listen on 127.0.0.1:"
                        + taken.getLocalPort()), status.toString());
                assertEquals(0, agent.awaitExit(Duration.ofSeconds(90)), "it ends on its lease: " + agent.output());
                assertTrue(Files.readString(armed).length() > 0, "the backstop was armed");
            }
        }
    }

    @Test
    void badSshSettingsAreReportedAndTheInstanceStillEndsOnItsLease() throws Exception {
        int port = FreePorts.loopbackPort();
        Path armed = dir.resolve("armed.txt");
        String ssh = "  lease:\n    ttl: 20s\n  ssh:\n    enabled: true\n    port: 0\n";
        try (MetadataMock imds = MetadataMock.builder().instanceId(INSTANCE_ID).userData(userData(ca, INSTANCE_ID, port, ssh)).start();
             AgentProcess agent = AgentProcess.start(settings(imds.endpoint().toString(), 0), onALease(recorder(armed)))) {
            assertEquals(port, agent.awaitListening(Duration.ofSeconds(60)), agent.output());
            Kiln.Run status = kiln.run("status", "--agent", "127.0.0.1:" + port);
            assertTrue(status.out().contains("not serving over SSH: configuration error: kiln.ssh.enabled is true but kiln.ssh.outputs"
                    + " is not set"), status.toString());
            assertEquals(0, agent.awaitExit(Duration.ofSeconds(90)), "it ends on its lease: " + agent.output());
            assertTrue(Files.readString(armed).length() > 0, "the backstop was armed");
        }
    }

    @Test
    void aGrpcPortInUseLeavesTheAgentRunningOnItsLease() throws Exception {
        Path armed = dir.resolve("armed.txt");
        try (java.net.ServerSocket taken = new java.net.ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress());
             MetadataMock imds = MetadataMock.builder().instanceId(INSTANCE_ID)
                     .userData(userData(ca, INSTANCE_ID, taken.getLocalPort(), "  lease:\n    ttl: 5s\n")).start();
             AgentProcess agent = AgentProcess.start(settings(imds.endpoint().toString(), 0), onALease(recorder(armed)))) {
            assertEquals(0, agent.awaitExit(Duration.ofSeconds(90)), "it ends on its lease: " + agent.output());
            assertTrue(agent.output().contains("cannot start the gRPC server"), agent.output());
            assertTrue(agent.output().contains("kiln status cannot reach this agent; it ends the instance at"), agent.output());
            assertTrue(Files.readString(armed).length() > 0, "the backstop was armed");
        }
    }

    @Test
    void aVolumeRegistryItCannotReadIsReportedAndTheInstanceStillEndsOnItsLease() throws Exception {
        int port = FreePorts.loopbackPort();
        Path armed = dir.resolve("armed.txt");
        // The agent's record of its mounts is unreadable (a directory where its file should be).
        Files.createDirectories(dir.resolve("state/volumes/mounts"));
        try (MetadataMock imds = MetadataMock.builder().instanceId(INSTANCE_ID)
                .userData(userData(ca, INSTANCE_ID, port, "  lease:\n    ttl: 20s\n")).start();
             AgentProcess agent = AgentProcess.start(settings(imds.endpoint().toString(), 0), onALease(recorder(armed)))) {
            assertEquals(port, agent.awaitListening(Duration.ofSeconds(60)), agent.output());
            Kiln.Run status = kiln.run("status", "--agent", "127.0.0.1:" + port);
            assertTrue(status.out().contains("cannot read the mount registry " + dir.resolve("state/volumes/mounts")), status.toString());
            assertEquals(0, agent.awaitExit(Duration.ofSeconds(90)), "it ends on its lease: " + agent.output());
            assertTrue(Files.isDirectory(dir.resolve("state/volumes/mounts")), "what it could not read is left as it was");
            assertTrue(Files.readString(armed).length() > 0, "the backstop was armed");
        }
    }
}
