package dev.kiln.e2e;

import dev.kiln.controller.ExitCodes;
import dev.kiln.controller.KilnException;
import dev.kiln.controller.client.AgentClient;
import dev.kiln.controller.client.AgentEndpoint;
import dev.kiln.controller.client.ClientTls;
import dev.kiln.proto.agent.v1.AgentGrpc;
import dev.kiln.proto.agent.v1.Mode;
import dev.kiln.proto.agent.v1.StatusRequest;
import dev.kiln.proto.agent.v1.StatusResponse;
import dev.kiln.tls.GrpcTls;
import dev.kiln.tls.PemMaterial;
import dev.kiln.testkit.Prerequisites;
import io.grpc.CallOptions;
import io.grpc.Channel;
import io.grpc.ClientCall;
import io.grpc.ClientInterceptor;
import io.grpc.ForwardingClientCall;
import io.grpc.ForwardingClientCallListener;
import io.grpc.Grpc;
import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.MethodDescriptor;
import io.grpc.netty.NettyChannelBuilder;
import io.netty.handler.ssl.OpenSsl;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslProvider;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import javax.net.ssl.SSLSession;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Kiln's gRPC TLS runs on OpenSSL (BoringSSL, from netty-tcnative) where it loads and on the JDK's
 * own TLS otherwise, or when {@code -Dkiln.tls.provider=jdk} says so. An agent baked into an AMI
 * and a controller on a workstation may use either, so every pairing must work, with the same
 * protocol and the same checks: two real agent processes (one of each), clients of each kind.
 */
class TlsProvidersTest {

    @TempDir
    static Path dir;

    static TestFleet fleet;
    static AgentProcess opensslAgent;
    static AgentProcess jdkAgent;
    static int opensslPort;
    static int jdkPort;

    @BeforeAll
    static void startAgents() throws Exception {
        // The agent jar ships BoringSSL for Linux on x86-64 and ARM; CI must exercise it.
        Prerequisites.require("BoringSSL from netty-tcnative (Kiln's gRPC TLS; failed here with: "
                + OpenSsl.unavailabilityCause() + ")", OpenSsl.isAvailable(),
                "run on Linux (glibc) on x86-64 or ARM, with a temporary directory that allows executables");
        fleet = new TestFleet(dir);
        opensslAgent = start("openssl-agent", List.of());
        jdkAgent = start("jdk-agent", List.of("-D" + GrpcTls.PROVIDER_PROPERTY + "=jdk"));
        opensslPort = opensslAgent.awaitListening(Duration.ofSeconds(60));
        jdkPort = jdkAgent.awaitListening(Duration.ofSeconds(60));
    }

    private static AgentProcess start(String name, List<String> jvmOptions) throws Exception {
        Path settings = dir.resolve(name + ".yml");
        Files.writeString(settings, fleet.localAgentSettings(dir.resolve(name), fleet.agentCert(name)));
        return AgentProcess.start(jvmOptions, settings, Map.of());
    }

    @AfterAll
    static void stopAgents() throws Exception {
        for (AgentProcess agent : new AgentProcess[] {opensslAgent, jdkAgent}) {
            if (agent != null) {
                agent.close();
            }
        }
    }

    @Test
    void eachAgentSaysWhichTlsItUses() {
        assertTrue(opensslAgent.output().contains("gRPC server TLS: OpenSSL (BoringSSL"), opensslAgent.output());
        assertTrue(jdkAgent.output().contains("gRPC server TLS: the JDK's (-Dkiln.tls.provider=jdk)"), jdkAgent.output());
    }

    @ParameterizedTest(name = "{0} agent, {1} client")
    @CsvSource({"openssl, OPENSSL", "openssl, JDK", "jdk, OPENSSL", "jdk, JDK"})
    void everyPairingSpeaksTls13WithMutualAuthentication(String agent, SslProvider client) throws Exception {
        ClientTls mine = fleet.client("controller-" + agent + "-" + client);
        AtomicReference<SSLSession> session = new AtomicReference<>();
        ManagedChannel channel = NettyChannelBuilder.forAddress("127.0.0.1", port(agent))
                .sslContext(context(client, mine)).intercept(new SessionRecorder(session)).build();
        try {
            StatusResponse status = AgentGrpc.newBlockingStub(channel).withDeadlineAfter(10, TimeUnit.SECONDS)
                    .status(StatusRequest.getDefaultInstance());
            assertEquals(Mode.MODE_LOCAL, status.getMode());
        } finally {
            channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
        }
        SSLSession s = session.get();
        assertEquals("TLSv1.3", s.getProtocol());
        assertTrue(s.getCipherSuite().startsWith("TLS_AES_") || s.getCipherSuite().startsWith("TLS_CHACHA20_"),
                s.getCipherSuite());
        X509Certificate peer = (X509Certificate) s.getPeerCertificates()[0];
        assertTrue(peer.getSubjectX500Principal().getName().contains("kiln-agent " + agent + "-agent"),
                peer.getSubjectX500Principal().getName());
    }

    @ParameterizedTest(name = "{0} agent, {1} client")
    @CsvSource({"openssl, OPENSSL", "openssl, JDK", "jdk, OPENSSL", "jdk, JDK"})
    void everyPairingRefusesAClientFromAnotherFleet(String agent, SslProvider client) throws Exception {
        TestFleet other = new TestFleet(Files.createDirectories(dir.resolve("other-" + agent + "-" + client)));
        ClientTls intruder = other.client("intruder");
        // It trusts our agents' CA, so only its own certificate is wrong.
        SslContext tls = context(client, new ClientTls(fleet.caCert(), intruder.cert(), intruder.key()));
        AgentProcess process = agent.equals("jdk") ? jdkAgent : opensslAgent;
        int mark = process.outputLength();
        try (AgentClient c = new AgentClient(new AgentEndpoint("127.0.0.1", port(agent), null), tls, Duration.ofSeconds(10))) {
            KilnException e = assertThrows(KilnException.class, c::status);
            assertEquals(ExitCodes.UNREACHABLE, e.exitCode(), e.getMessage());
        }
        // The agent refused it, for its CA: not the client on its own side.
        process.awaitLine(mark, Pattern.compile("WARN .* refused TLS client 127\\.0\\.0\\.1:\\d+: "
                + Pattern.quote("certificate 'CN=kiln controller intruder,O=kiln' is not issued by the fleet CA")),
                Duration.ofSeconds(10));
    }

    @ParameterizedTest(name = "{0} agent, {1} client")
    @CsvSource({"openssl, OPENSSL", "openssl, JDK", "jdk, OPENSSL", "jdk, JDK"})
    void everyPairingRefusesAClientWithoutACertificate(String agent, SslProvider client) throws Exception {
        SslContext tls = GrpcTls.client(client, null, new X509Certificate[0],
                PemMaterial.certificates(Files.readAllBytes(fleet.caCert()), "ca"));
        AgentProcess process = agent.equals("jdk") ? jdkAgent : opensslAgent;
        int mark = process.outputLength();
        try (AgentClient c = new AgentClient(new AgentEndpoint("127.0.0.1", port(agent), null), tls, Duration.ofSeconds(10))) {
            KilnException e = assertThrows(KilnException.class, c::status);
            assertEquals(ExitCodes.UNREACHABLE, e.exitCode(), e.getMessage());
        }
        process.awaitLine(mark, Pattern.compile("WARN .* refused TLS client 127\\.0\\.0\\.1:\\d+: it presented no certificate"),
                Duration.ofSeconds(10));
    }

    @ParameterizedTest(name = "{0} client")
    @CsvSource({"OPENSSL", "JDK"})
    void everyClientRefusesAnAgentFromAnotherFleet(SslProvider client) throws Exception {
        TestFleet other = new TestFleet(Files.createDirectories(dir.resolve("impostor-" + client)));
        ClientTls mine = fleet.client("controller-trusting-others-" + client);
        SslContext trustsOther = context(client, new ClientTls(other.caCert(), mine.cert(), mine.key()));
        try (AgentClient c = new AgentClient(new AgentEndpoint("127.0.0.1", opensslPort, null), trustsOther, Duration.ofSeconds(10))) {
            KilnException e = assertThrows(KilnException.class, c::status);
            assertEquals(ExitCodes.UNREACHABLE, e.exitCode(), e.getMessage());
            // The same reason, in the JDK's words, on either provider.
            assertTrue(e.getMessage().contains("TLS handshake with agent 127.0.0.1:" + opensslPort
                    + " failed (PKIX path validation failed"), e.getMessage());
        }
    }

    @ParameterizedTest(name = "{0} client")
    @CsvSource({"OPENSSL", "JDK"})
    void everyClientChecksTheAgentCertificateName(SslProvider client) throws Exception {
        // Valid chain, wrong name: the agents' certificates are for localhost/127.0.0.1.
        ClientTls mine = fleet.client("controller-name-" + client);
        AgentEndpoint wrongName = new AgentEndpoint("127.0.0.1", jdkPort, null).withServerName("worker-9.kiln");
        try (AgentClient c = new AgentClient(wrongName, context(client, mine), Duration.ofSeconds(10))) {
            KilnException e = assertThrows(KilnException.class, c::status);
            assertEquals(ExitCodes.UNREACHABLE, e.exitCode(), e.getMessage());
            assertTrue(e.getMessage().contains("failed (No subject alternative DNS name matching worker-9.kiln found"),
                    e.getMessage());
        }
    }

    @Test
    void anAgentToldToUseAnUnknownProviderStopsWithAConfigurationError() throws Exception {
        try (AgentProcess bad = start("bad-provider-agent", List.of("-D" + GrpcTls.PROVIDER_PROPERTY + "=boringssl"))) {
            assertEquals(78, bad.awaitExit(Duration.ofSeconds(60)), bad.output());
            assertTrue(bad.output().contains("-Dkiln.tls.provider=boringssl is not a TLS provider; use openssl (the default) or jdk"),
                    bad.output());
        }
    }

    private static int port(String agent) {
        return agent.equals("jdk") ? jdkPort : opensslPort;
    }

    /** A client context on {@code provider} from {@code tls}'s files (its CA is the one it trusts). */
    private static SslContext context(SslProvider provider, ClientTls tls) throws Exception {
        return GrpcTls.client(provider, PemMaterial.pkcs8Key(Files.readAllBytes(tls.key()), "key").orElseThrow(),
                PemMaterial.certificates(Files.readAllBytes(tls.cert()), "cert"),
                PemMaterial.certificates(Files.readAllBytes(tls.ca()), "ca"));
    }

    /** Keeps the TLS session a call ran over (the transport's attribute, set once the headers arrive). */
    private record SessionRecorder(AtomicReference<SSLSession> session) implements ClientInterceptor {
        @Override
        public <Q, R> ClientCall<Q, R> interceptCall(MethodDescriptor<Q, R> method, CallOptions options, Channel next) {
            return new ForwardingClientCall.SimpleForwardingClientCall<>(next.newCall(method, options)) {
                @Override
                public void start(Listener<R> listener, Metadata headers) {
                    ClientCall<Q, R> call = delegate();
                    super.start(new ForwardingClientCallListener.SimpleForwardingClientCallListener<>(listener) {
                        @Override
                        public void onHeaders(Metadata received) {
                            session.set(call.getAttributes().get(Grpc.TRANSPORT_ATTR_SSL_SESSION));
                            super.onHeaders(received);
                        }
                    }, headers);
                }
            };
        }
    }
}
