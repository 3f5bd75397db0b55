package dev.kiln.e2e;

import dev.kiln.controller.ExitCodes;
import dev.kiln.controller.KilnException;
import dev.kiln.controller.client.AgentClient;
import dev.kiln.controller.client.AgentEndpoint;
import dev.kiln.controller.client.ClientTls;
import dev.kiln.proto.agent.v1.Mode;
import dev.kiln.proto.agent.v1.StatusResponse;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The agent's gRPC server accepts exactly the clients whose certificates chain to the fleet CA,
 * are valid now and are issued for TLS client authentication, and the controller accepts exactly
 * agents whose certificates chain to it and name the address it dialled. Runs a real agent
 * process from its jar. Every client is the CLI's own ({@link AgentClient} built from
 * {@link ClientTls}), differing only in the material it is handed.
 *
 * <p>A refusal by the agent is shown on the agent's side: its log names the client's address and
 * the reason, and the client received the alert the agent sent. A client that gave up on its own
 * side would show neither, so it cannot pass for a refusal.
 */
class MutualTlsTest {

    /** An alert received from the peer, in the JDK's words or BoringSSL's. */
    private static final Pattern RECEIVED_ALERT = Pattern.compile(
            "Received fatal alert: (\\w+)|(?:SSLV3|TLSV1|TLSV1_3)_ALERT_(\\w+)");

    @TempDir
    static Path dir;

    static TestFleet fleet;
    static AgentProcess agent;
    static AgentEndpoint endpoint;
    /** Whether the agent runs on OpenSSL (it falls back to the JDK's TLS where OpenSSL cannot load). */
    static boolean agentOnOpenSsl;

    @BeforeAll
    static void startAgent() throws Exception {
        fleet = new TestFleet(dir);
        Path settings = dir.resolve("agent.yml");
        Files.writeString(settings, fleet.localAgentSettings(dir.resolve("state"), fleet.agentCert("agent")));
        agent = AgentProcess.start(settings, Map.of());
        endpoint = new AgentEndpoint("127.0.0.1", agent.awaitListening(Duration.ofSeconds(60)), null);
        agentOnOpenSsl = agent.output().contains("gRPC server TLS: OpenSSL");
    }

    @AfterAll
    static void stopAgent() throws Exception {
        if (agent != null) {
            agent.close();
        }
    }

    /** The one way every case calls the agent: the CLI's client, from this material. */
    private static StatusResponse status(AgentEndpoint target, ClientTls material) {
        try (AgentClient client = new AgentClient(target, material, Duration.ofSeconds(10))) {
            return client.status();
        }
    }

    /**
     * Asserts that the agent refuses a client holding {@code material}: the client fails as
     * unreachable, having received the agent's alert ({@code openSslAlert} from an agent on
     * OpenSSL, {@code jdkAlert} from one on the JDK's TLS, which sends fewer kinds), and the agent
     * logs the refusal of a loopback client for {@code reason}.
     */
    private static void assertAgentRefuses(ClientTls material, String reason, String openSslAlert, String jdkAlert)
            throws Exception {
        int mark = agent.outputLength();
        KilnException e = assertThrows(KilnException.class, () -> status(endpoint, material));
        assertEquals(ExitCodes.UNREACHABLE, e.exitCode(), e.getMessage());
        agent.awaitLine(mark, Pattern.compile("WARN .* refused TLS client 127\\.0\\.0\\.1:\\d+: " + Pattern.quote(reason)),
                Duration.ofSeconds(10));
        assertEquals(Optional.of(agentOnOpenSsl ? openSslAlert : jdkAlert), receivedAlert(e),
                "the alert the client received; its failure: " + e.getMessage());
    }

    /** The alert the client received from the agent, if its failure was one. */
    private static Optional<String> receivedAlert(Throwable failure) {
        for (Throwable t = failure; t != null; t = t.getCause()) {
            Matcher m = RECEIVED_ALERT.matcher(String.valueOf(t.getMessage()));
            if (m.find()) {
                return Optional.of((m.group(1) != null ? m.group(1) : m.group(2)).toLowerCase(Locale.ROOT));
            }
        }
        return Optional.empty();
    }

    /**
     * Asserts that the client refused the agent on its own side: it failed the handshake without
     * an alert from the agent, and the agent logs that the client ended the handshake.
     */
    private static KilnException assertClientRefuses(AgentEndpoint target, ClientTls material) throws Exception {
        int mark = agent.outputLength();
        KilnException e = assertThrows(KilnException.class, () -> status(target, material));
        assertEquals(ExitCodes.UNREACHABLE, e.exitCode(), e.getMessage());
        assertEquals(Optional.empty(), receivedAlert(e), e.getMessage());
        agent.awaitLine(mark, Pattern.compile("INFO .* TLS handshake with 127\\.0\\.0\\.1:\\d+ failed: "
                + "the client ended it with the alert \\w+"), Duration.ofSeconds(10));
        return e;
    }

    @Test
    void acceptsTheControllersCertificate() throws Exception {
        StatusResponse status = status(endpoint, fleet.client("controller"));
        assertEquals(Mode.MODE_LOCAL, status.getMode());
        assertTrue(status.getInstanceId().startsWith("local-"), status.getInstanceId());
        assertTrue(Instant.ofEpochSecond(status.getStartedAt().getSeconds()).isBefore(Instant.now().plusSeconds(1)));
    }

    @Test
    void refusesAClientWithoutACertificate() throws Exception {
        assertAgentRefuses(ClientTls.withoutCertificate(fleet.caCert()), "it presented no certificate",
                "certificate_required", "bad_certificate");
    }

    @Test
    void refusesAClientCertificateFromAnotherCa() throws Exception {
        TestFleet other = new TestFleet(Files.createDirectories(dir.resolve("other-fleet")));
        ClientTls intruder = other.client("intruder");
        // It trusts our agent's CA, so only the client's side of the handshake is wrong.
        assertAgentRefuses(new ClientTls(fleet.caCert(), intruder.cert(), intruder.key()),
                "certificate 'CN=kiln controller intruder,O=kiln' is not issued by the fleet CA",
                "unknown_ca", "certificate_unknown");
    }

    @Test
    void refusesAnExpiredClientCertificate() throws Exception {
        Instant now = Instant.now();
        ClientTls expired = fleet.client("expired", now.minus(Duration.ofDays(10)), now.minus(Duration.ofDays(1)));
        assertAgentRefuses(expired, "certificate 'CN=kiln controller expired,O=kiln' expired at ",
                "certificate_expired", "certificate_unknown");
    }

    @Test
    void refusesAClientCertificateThatIsNotYetValid() throws Exception {
        Instant now = Instant.now();
        ClientTls early = fleet.client("not-yet-valid", now.plus(Duration.ofDays(1)), now.plus(Duration.ofDays(10)));
        assertAgentRefuses(early, "certificate 'CN=kiln controller not-yet-valid,O=kiln' is not valid until ",
                "certificate_expired", "certificate_unknown");
    }

    @Test
    void refusesAnAgentsServerCertificateUsedAsAClientCertificate() throws Exception {
        // Another agent's certificate chains to the same CA but is for server authentication only:
        // a compromised agent must not be able to drive its peers.
        Path[] peer = fleet.agentCert("peer");
        assertAgentRefuses(new ClientTls(fleet.caCert(), peer[0], peer[1]),
                "certificate 'CN=kiln-agent peer,O=kiln' is not for TLS client authentication "
                        + "(its extended key usage is serverAuth)", "unsupported_certificate", "certificate_unknown");
    }

    @Test
    void refusesAFleetCertificateWithoutTheClientAuthenticationUsage() throws Exception {
        // The JDK's own check accepts a certificate with no extended key usage; the agent requires clientAuth.
        assertAgentRefuses(fleet.clientWithoutExtendedKeyUsage("no-usage"),
                "certificate 'CN=kiln controller no-usage,O=kiln' is not for TLS client authentication "
                        + "(it has no extended key usage)", "unsupported_certificate", "certificate_unknown");
    }

    @Test
    void controllerRefusesAnAgentWhoseCertificateIsFromAnotherCa() throws Exception {
        TestFleet other = new TestFleet(Files.createDirectories(dir.resolve("impostor-fleet")));
        // The agent is the real one; the client trusts only the other CA, as a controller of
        // another fleet would: the handshake fails on the agent's certificate.
        ClientTls mine = fleet.client("controller-2");
        KilnException e = assertClientRefuses(endpoint, new ClientTls(other.caCert(), mine.cert(), mine.key()));
        assertTrue(e.getMessage().contains("TLS handshake with agent 127.0.0.1:"), e.getMessage());
    }

    @Test
    void controllerChecksTheAgentCertificateName() throws Exception {
        // Valid chain, wrong name: the certificate is for localhost/127.0.0.1, not "worker-9.kiln".
        KilnException e = assertClientRefuses(endpoint.withServerName("worker-9.kiln"), fleet.client("controller-3"));
        assertTrue(e.getMessage().contains("worker-9.kiln"), e.getMessage());
    }
}
