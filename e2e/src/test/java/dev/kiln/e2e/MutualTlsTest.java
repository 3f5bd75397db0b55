package dev.kiln.e2e;

import dev.kiln.controller.ExitCodes;
import dev.kiln.controller.KilnException;
import dev.kiln.controller.client.AgentClient;
import dev.kiln.controller.client.AgentEndpoint;
import dev.kiln.controller.client.ClientTls;
import dev.kiln.proto.agent.v1.Mode;
import dev.kiln.proto.agent.v1.StatusResponse;
import io.grpc.netty.GrpcSslContexts;
import io.netty.handler.ssl.SslContext;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The agent's gRPC server accepts exactly the clients whose certificates chain to the fleet CA
 * and are valid now, and the controller accepts exactly agents whose certificates do.
 * Runs a real agent process from its jar; clients are the controller's own gRPC client.
 */
class MutualTlsTest {

    @TempDir
    static Path dir;

    static TestFleet fleet;
    static AgentProcess agent;
    static AgentEndpoint endpoint;

    @BeforeAll
    static void startAgent() throws Exception {
        fleet = new TestFleet(dir);
        Path settings = dir.resolve("agent.yml");
        Files.writeString(settings, fleet.localAgentSettings(dir.resolve("state"), fleet.agentCert("agent")));
        agent = AgentProcess.start(settings, Map.of());
        endpoint = new AgentEndpoint("127.0.0.1", agent.awaitListening(Duration.ofSeconds(60)), null);
    }

    @AfterAll
    static void stopAgent() throws Exception {
        if (agent != null) {
            agent.close();
        }
    }

    private static StatusResponse status(SslContext tls) {
        try (AgentClient client = new AgentClient(endpoint, tls, Duration.ofSeconds(10))) {
            return client.status();
        }
    }

    @Test
    void acceptsTheControllersCertificate() throws Exception {
        StatusResponse status = status(fleet.client("controller").sslContext());
        assertEquals(Mode.MODE_LOCAL, status.getMode());
        assertTrue(status.getInstanceId().startsWith("local-"), status.getInstanceId());
        assertTrue(Instant.ofEpochSecond(status.getStartedAt().getSeconds()).isBefore(Instant.now().plusSeconds(1)));
    }

    @Test
    void refusesAClientWithoutACertificate() throws Exception {
        SslContext noCert = GrpcSslContexts.forClient().trustManager(fleet.caCert().toFile()).build();
        KilnException e = assertThrows(KilnException.class, () -> status(noCert));
        assertEquals(ExitCodes.UNREACHABLE, e.exitCode(), e.getMessage());
    }

    @Test
    void refusesAClientCertificateFromAnotherCa() throws Exception {
        TestFleet other = new TestFleet(Files.createDirectories(dir.resolve("other-fleet")));
        ClientTls otherClient = other.client("intruder");
        // Trust our agent's CA so only the client side of the handshake is wrong.
        SslContext tls = GrpcSslContexts.forClient().trustManager(fleet.caCert().toFile())
                .keyManager(otherClient.cert().toFile(), otherClient.key().toFile()).build();
        KilnException e = assertThrows(KilnException.class, () -> status(tls));
        assertEquals(ExitCodes.UNREACHABLE, e.exitCode(), e.getMessage());
    }

    @Test
    void refusesAnExpiredClientCertificate() throws Exception {
        Instant now = Instant.now();
        ClientTls expired = fleet.client("expired", now.minus(Duration.ofDays(10)), now.minus(Duration.ofDays(1)));
        KilnException e = assertThrows(KilnException.class, () -> status(expired.sslContext()));
        assertEquals(ExitCodes.UNREACHABLE, e.exitCode(), e.getMessage());
    }

    @Test
    void refusesAnAgentsServerCertificateUsedAsAClientCertificate() throws Exception {
        // Another agent's certificate chains to the same CA but is for server authentication only:
        // a compromised agent must not be able to drive its peers.
        Path[] peer = fleet.agentCert("peer");
        SslContext tls = GrpcSslContexts.forClient().trustManager(fleet.caCert().toFile())
                .keyManager(peer[0].toFile(), peer[1].toFile()).build();
        KilnException e = assertThrows(KilnException.class, () -> status(tls));
        assertEquals(ExitCodes.UNREACHABLE, e.exitCode(), e.getMessage());
    }

    @Test
    void controllerRefusesAnAgentWhoseCertificateIsFromAnotherCa() throws Exception {
        TestFleet other = new TestFleet(Files.createDirectories(dir.resolve("impostor-fleet")));
        // The controller trusts only its own fleet CA; the agent here is the real one, so use a
        // client that trusts the other CA: the handshake must fail on the server's certificate.
        ClientTls mine = fleet.client("controller-2");
        SslContext trustsOther = GrpcSslContexts.forClient().trustManager(other.caCert().toFile())
                .keyManager(mine.cert().toFile(), mine.key().toFile()).build();
        KilnException e = assertThrows(KilnException.class, () -> status(trustsOther));
        assertEquals(ExitCodes.UNREACHABLE, e.exitCode());
        assertTrue(e.getMessage().contains("TLS handshake with agent 127.0.0.1:"), e.getMessage());
    }

    @Test
    void controllerChecksTheAgentCertificateName() throws Exception {
        // Valid chain, wrong name: the certificate is for localhost/127.0.0.1, not "worker-9.kiln".
        ClientTls mine = fleet.client("controller-3");
        try (AgentClient client = new AgentClient(endpoint.withServerName("worker-9.kiln"), mine, Duration.ofSeconds(10))) {
            KilnException e = assertThrows(KilnException.class, client::status);
            assertEquals(ExitCodes.UNREACHABLE, e.exitCode());
        }
    }

    @Test
    void unimplementedRpcsSayWhichFeatureIsMissing() throws Exception {
        try (AgentClient client = new AgentClient(endpoint, fleet.client("controller-4"), Duration.ofSeconds(10))) {
            io.grpc.StatusRuntimeException e = assertThrows(io.grpc.StatusRuntimeException.class,
                    () -> client.stub().listVolumes(dev.kiln.proto.agent.v1.ListVolumesRequest.getDefaultInstance()));
            assertEquals(io.grpc.Status.Code.UNIMPLEMENTED, e.getStatus().getCode());
            assertTrue(e.getStatus().getDescription().contains("ListVolumes"), e.getStatus().getDescription());
        }
    }
}
