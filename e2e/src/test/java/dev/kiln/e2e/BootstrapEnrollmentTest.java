package dev.kiln.e2e;

import dev.kiln.controller.ExitCodes;
import dev.kiln.controller.KilnException;
import dev.kiln.controller.client.AgentClient;
import dev.kiln.controller.client.AgentEndpoint;
import dev.kiln.controller.client.ClientTls;
import dev.kiln.controller.client.Enroller;
import dev.kiln.controller.config.KilnPaths;
import dev.kiln.controller.pki.FleetCa;
import dev.kiln.controller.pki.IssuedCertificate;
import dev.kiln.controller.pki.Pem;
import dev.kiln.proto.agent.v1.CertificateRequestRequest;
import dev.kiln.proto.agent.v1.CertificateRequestResponse;
import dev.kiln.proto.agent.v1.EnrollmentGrpc;
import dev.kiln.testkit.FreePorts;
import dev.kiln.testkit.MetadataMock;
import dev.kiln.tls.BootstrapCertificate;
import io.grpc.ManagedChannel;
import org.bouncycastle.openssl.PEMParser;
import org.bouncycastle.pkcs.PKCS10CertificationRequest;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.StringReader;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicReference;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * User data carries only a bootstrap certificate and key (docs/security.md, "No long-lived
 * secret in user data"): the controller accepts them for enrollment only, the agent replaces
 * them with a key it generates and keeps, and afterwards the bootstrap material is refused,
 * whether the agent itself or someone replaying its user data presents it; an expired one is
 * refused too. Real agent processes in ec2 mode (IMDSv2 from amazon-ec2-metadata-mock), real
 * gRPC over loopback, the controller's own classes and CLI.
 */
class BootstrapEnrollmentTest {

    static final String INSTANCE_ID = "i-0b00757a9e1e0a11d";
    private static final Pattern PRIVATE_KEY = Pattern.compile(
            "-----BEGIN PRIVATE KEY-----\\n(.*?)-----END PRIVATE KEY-----", Pattern.DOTALL);

    @TempDir
    Path dir;

    Kiln kiln;
    FleetCa ca;
    ClientTls tls;

    @BeforeEach
    void initController() throws Exception {
        kiln = new Kiln(dir.resolve("home"));
        Kiln.Run init = kiln.run("init");
        assertEquals(0, init.exitCode(), init.toString());
        ca = FleetCa.load(kiln.configDir().resolve("fleet-ca.crt"), kiln.configDir().resolve("fleet-ca.key"));
        tls = ClientTls.of(new KilnPaths(kiln.configDir(), kiln.stateDir()));
    }

    private Enroller enroller() {
        return new Enroller(ca, tls, kiln.stateDir().resolve("enrolled"), Duration.ofSeconds(10));
    }

    private Enroller.Result enroll(int port) {
        return enroller().enroll(new AgentEndpoint("127.0.0.1", port, null), INSTANCE_ID, List.of("localhost"),
                List.of("127.0.0.1"), Instant.now().plus(Duration.ofDays(1)));
    }

    /** A bootstrap certificate for 127.0.0.1, as `kiln launch` issues one for the instance's name. */
    private IssuedCertificate bootstrap(Instant notBefore, Instant notAfter) {
        return ca.issueBootstrap("agent-test.kiln.internal", List.of("localhost"), List.of("127.0.0.1"), notBefore, notAfter);
    }

    private Path settings(String imdsEndpoint, Path stateDir) throws Exception {
        Path file = Files.createTempFile(dir, "agent", ".yml");
        Files.writeString(file, """
                kiln:
                  mode: ec2
                  state-dir: '%s'
                  grpc:
                    host: 127.0.0.1
                  imds:
                    endpoint: %s
                    timeout: 20s
                """.formatted(stateDir, imdsEndpoint));
        return file;
    }

    private static Map<String, String> port(int port) {
        return Map.of("KILN_GRPC_PORT", Integer.toString(port));
    }

    /** The certificate an agent presents, as seen by the controller's enrollment client (which accepts both kinds). */
    private X509Certificate presented(int port) {
        AtomicReference<X509Certificate> seen = new AtomicReference<>();
        AgentEndpoint endpoint = new AgentEndpoint("127.0.0.1", port, null);
        ManagedChannel channel = AgentClient.channel(endpoint, tls.enrollmentContext(seen::set));
        try (AgentClient client = new AgentClient(endpoint, channel, Duration.ofSeconds(10))) {
            client.status();
        }
        return seen.get();
    }

    @Test
    void theAgentEnrollsItsOwnKeyAndTheBootstrapMaterialIsRefusedOnceReplaced() throws Exception {
        Instant now = Instant.now();
        IssuedCertificate boot = bootstrap(now.minus(Duration.ofMinutes(5)), now.plus(Duration.ofMinutes(15)));
        String userData = Ec2ModeTest.userDataWith(boot, ca, 0, "  lease:\n    ttl: 1h\n");
        // User data holds one private key, and it is the bootstrap certificate's.
        Matcher keys = PRIVATE_KEY.matcher(userData);
        assertTrue(keys.find(), userData);
        assertFalse(keys.find(), "one private key only:\n" + userData);
        assertTrue(squeeze(userData).contains(squeeze(boot.privateKeyPem())), "the bootstrap key is the one");
        assertTrue(BootstrapCertificate.is(boot.certificate()));

        Path state = dir.resolve("state");
        int port = FreePorts.loopbackPort();
        try (MetadataMock imds = MetadataMock.builder().instanceId(INSTANCE_ID).userData(userData).start()) {
            try (AgentProcess agent = AgentProcess.start(settings(imds.endpoint().toString(), state), port(port))) {
                agent.awaitListening(Duration.ofSeconds(60));

                // Before enrollment: every call but enrollment refuses the bootstrap certificate.
                Kiln.Run refused = kiln.run("status", "--agent", "127.0.0.1:" + port);
                assertNotEquals(0, refused.exitCode(), refused.toString());
                assertTrue(refused.err().contains("bootstrap certificate"), refused.toString());
                assertEquals(boot.certificate(), presented(port), "the enrollment client sees the bootstrap certificate");

                // The request carries the agent's public key only, never a private key.
                CertificateRequestResponse csr = certificateRequest(port);
                assertFalse(csr.getCsrPem().contains("PRIVATE"), csr.getCsrPem());
                assertEquals(INSTANCE_ID, csr.getInstanceId());
                try (PEMParser p = new PEMParser(new StringReader(csr.getCsrPem()))) {
                    assertInstanceOf(PKCS10CertificationRequest.class, p.readObject());
                }
                // The agent's own key is on the instance only: 0600 in its state directory, not in user data.
                Path ownKey = state.resolve("tls/agent.key");
                assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(ownKey)));
                assertFalse(squeeze(userData).contains(squeeze(body(Files.readString(ownKey)))),
                        "the agent's key is not in user data");

                Enroller.Result r = enroll(port);
                assertTrue(r.enrolledNow());
                assertNotEquals(boot.certificate().getPublicKey(), r.issued().getPublicKey());
                assertFalse(BootstrapCertificate.is(r.issued()));

                // The same server now presents the enrolled certificate, and the CLI accepts it.
                assertEquals(r.issued(), presented(port));
                Kiln.Run status = kiln.run("status", "--agent", "127.0.0.1:" + port);
                assertEquals(0, status.exitCode(), status.toString());
                assertTrue(status.out().contains(INSTANCE_ID), status.out());
                assertFalse(enroll(port).enrolledNow(), "an enrolled agent enrolls once");
                assertTrue(agent.output().contains("the bootstrap certificate is no longer served"), agent.output());
            }

            // Restarted, the agent serves its enrolled certificate, never the bootstrap material again.
            try (AgentProcess again = AgentProcess.start(settings(imds.endpoint().toString(), state), port(port))) {
                again.awaitListening(Duration.ofSeconds(60));
                assertFalse(BootstrapCertificate.is(presented(port)), again.output());
                assertEquals(0, kiln.run("status", "--agent", "127.0.0.1:" + port).exitCode());
            }

            // Someone replays the user data (a second agent from the same bootstrap material): the
            // controller refuses it, for every call and for a second enrollment of the instance.
            int replayPort = FreePorts.loopbackPort();
            try (AgentProcess replay = AgentProcess.start(settings(imds.endpoint().toString(), dir.resolve("replay")),
                    port(replayPort))) {
                replay.awaitListening(Duration.ofSeconds(60));
                Kiln.Run status = kiln.run("status", "--agent", "127.0.0.1:" + replayPort);
                assertNotEquals(0, status.exitCode(), status.toString());
                assertTrue(status.err().contains("bootstrap certificate"), status.toString());
                KilnException e = assertThrows(KilnException.class, () -> enroll(replayPort));
                assertEquals(ExitCodes.REFUSED, e.exitCode());
                assertTrue(e.getMessage().contains("replays its user data"), e.getMessage());
                assertFalse(Files.exists(dir.resolve("replay/tls/agent.crt")), "the replayed agent got no certificate");
            }
        }
    }

    @Test
    void anExpiredBootstrapCertificateIsRefused() throws Exception {
        Instant now = Instant.now();
        IssuedCertificate boot = bootstrap(now.minus(Duration.ofMinutes(40)), now.minus(Duration.ofMinutes(1)));
        String userData = Ec2ModeTest.userDataWith(boot, ca, 0, "  lease:\n    ttl: 1h\n");
        Path state = dir.resolve("state");
        int port = FreePorts.loopbackPort();
        try (MetadataMock imds = MetadataMock.builder().instanceId(INSTANCE_ID).userData(userData).start();
             AgentProcess agent = AgentProcess.start(settings(imds.endpoint().toString(), state), port(port))) {
            agent.awaitListening(Duration.ofSeconds(60));
            KilnException e = assertThrows(KilnException.class, () -> enroll(port));
            assertEquals(ExitCodes.UNREACHABLE, e.exitCode());
            // The JDK's PKIX check says "validity check failed" for a certificate past its notAfter.
            assertTrue(e.getMessage().matches("(?s).*(validity check failed|expired).*"), e.getMessage());
            assertFalse(Files.exists(state.resolve("tls/agent.crt")));
            Kiln.Run status = kiln.run("status", "--agent", "127.0.0.1:" + port);
            assertNotEquals(0, status.exitCode(), status.toString());
        }
    }

    private CertificateRequestResponse certificateRequest(int port) {
        AgentEndpoint endpoint = new AgentEndpoint("127.0.0.1", port, null);
        ManagedChannel channel = AgentClient.channel(endpoint, tls.enrollmentContext(c -> { }));
        try (AgentClient client = new AgentClient(endpoint, channel, Duration.ofSeconds(10))) {
            CertificateRequestResponse r = EnrollmentGrpc.newBlockingStub(channel)
                    .certificateRequest(CertificateRequestRequest.getDefaultInstance());
            assertNotNull(r);
            return r;
        }
    }

    /** Text without white space: user data indents the PEM it holds. */
    private static String squeeze(String text) {
        return text.replaceAll("\\s", "");
    }

    private static String body(String pem) {
        Matcher m = PRIVATE_KEY.matcher(pem);
        assertTrue(m.find(), pem);
        return m.group(1).strip();
    }
}
