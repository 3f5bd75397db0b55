package dev.kiln.tls;

import io.netty.buffer.ByteBufAllocator;
import io.netty.handler.ssl.OpenSsl;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslProvider;
import org.bouncycastle.asn1.x500.X500Name;
import org.bouncycastle.asn1.x509.BasicConstraints;
import org.bouncycastle.asn1.x509.ExtendedKeyUsage;
import org.bouncycastle.asn1.x509.Extension;
import org.bouncycastle.asn1.x509.GeneralName;
import org.bouncycastle.asn1.x509.GeneralNames;
import org.bouncycastle.asn1.x509.KeyPurposeId;
import org.bouncycastle.cert.jcajce.JcaX509CertificateConverter;
import org.bouncycastle.cert.jcajce.JcaX509v3CertificateBuilder;
import org.bouncycastle.operator.jcajce.JcaContentSignerBuilder;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import javax.net.ssl.SSLEngine;
import javax.net.ssl.SSLEngineResult.HandshakeStatus;
import javax.net.ssl.SSLException;
import java.math.BigInteger;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Base64;
import java.util.Date;
import java.util.List;
import java.util.concurrent.atomic.AtomicReference;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The mutual TLS of Kiln's gRPC connections as GrpcTls builds it, on both providers: real TLS
 * engines handshake in memory (no sockets), with certificates from a test CA. What each end
 * accepts and refuses is what an agent and a controller see on the wire.
 */
class GrpcTlsTest {

    private static final String AGENT_NAME = "agent.kiln";

    private static Issued ca;
    private static Issued otherCa;
    private static Issued agent;
    private static Issued bootstrapAgent;
    private static Issued controller;
    private static Issued serverOnly;
    private static Issued noUsage;
    private static Issued stranger;

    record Issued(KeyPair keys, X509Certificate cert) {
    }

    @BeforeAll
    static void certificates() throws Exception {
        ca = issue("CN=kiln fleet CA", null, null, null);
        otherCa = issue("CN=another fleet CA", null, null, null);
        agent = issue("CN=" + AGENT_NAME, ca, KeyPurposeId.id_kp_serverAuth, AGENT_NAME);
        bootstrapAgent = issue("CN=" + AGENT_NAME + ",OU=" + BootstrapCertificate.UNIT, ca, KeyPurposeId.id_kp_serverAuth, AGENT_NAME);
        controller = issue("CN=controller", ca, KeyPurposeId.id_kp_clientAuth, null);
        serverOnly = issue("CN=not-a-client", ca, KeyPurposeId.id_kp_serverAuth, null);
        noUsage = issue("CN=no-usage", ca, null, null);
        stranger = issue("CN=controller", otherCa, KeyPurposeId.id_kp_clientAuth, null);
    }

    @AfterEach
    void clearProperty() {
        System.clearProperty(GrpcTls.PROVIDER_PROPERTY);
    }

    static List<SslProvider> providers() {
        // Under CI the OpenSSL provider must be there; elsewhere a machine without it tests the JDK's only.
        assertTrue(OpenSsl.isAvailable() || System.getenv("CI") == null, "netty-tcnative does not load: " + OpenSsl.unavailabilityCause());
        return OpenSsl.isAvailable() ? List.of(SslProvider.OPENSSL, SslProvider.JDK) : List.of(SslProvider.JDK);
    }

    @ParameterizedTest
    @MethodSource("providers")
    void aControllerAndAnAgentOfTheSameFleetSpeakTls13WithH2(SslProvider provider) throws Exception {
        SslContext server = GrpcTls.server(provider, agent.keys().getPrivate(), chain(agent), chain(ca));
        SslContext client = GrpcTls.client(provider, controller.keys().getPrivate(), chain(controller), chain(ca));
        SSLEngine[] ends = handshake(client, server);
        assertEquals("TLSv1.3", ends[0].getSession().getProtocol());
        assertEquals("h2", ends[0].getApplicationProtocol());
        assertEquals(controller.cert(), ends[1].getSession().getPeerCertificates()[0], "the agent sees the controller's certificate");
        assertEquals(agent.cert(), ends[0].getSession().getPeerCertificates()[0], "the controller sees the agent's certificate");
    }

    @ParameterizedTest
    @MethodSource("providers")
    void theAgentRefusesACertificateThatIsNotForClientAuthentication(SslProvider provider) throws Exception {
        SslContext server = GrpcTls.server(provider, agent.keys().getPrivate(), chain(agent), chain(ca));
        SslContext client = GrpcTls.client(provider, serverOnly.keys().getPrivate(), chain(serverOnly), chain(ca));
        SSLException e = assertThrows(SSLException.class, () -> handshake(client, server));
        if (provider == SslProvider.JDK) {
            assertTrue(causes(e).contains("certificate 'CN=not-a-client' is not for TLS client authentication"
                    + " (its extended key usage is serverAuth)"), causes(e));
        }
    }

    @ParameterizedTest
    @MethodSource("providers")
    void theAgentRefusesACertificateWithoutAnExtendedKeyUsage(SslProvider provider) throws Exception {
        // The JDK's own check accepts such a certificate; ClientCertificateTrust does not.
        SslContext server = GrpcTls.server(provider, agent.keys().getPrivate(), chain(agent), chain(ca));
        SslContext client = GrpcTls.client(provider, noUsage.keys().getPrivate(), chain(noUsage), chain(ca));
        SSLException e = assertThrows(SSLException.class, () -> handshake(client, server));
        if (provider == SslProvider.JDK) {
            assertTrue(causes(e).contains("certificate 'CN=no-usage' is not for TLS client authentication"
                    + " (it has no extended key usage)"), causes(e));
        }
    }

    @ParameterizedTest
    @MethodSource("providers")
    void theAgentRefusesAClientOfAnotherFleet(SslProvider provider) throws Exception {
        SslContext server = GrpcTls.server(provider, agent.keys().getPrivate(), chain(agent), chain(ca));
        SslContext client = GrpcTls.client(provider, stranger.keys().getPrivate(), chain(stranger), chain(ca));
        // The JDK's client sends no certificate the agent's CA list does not name; OpenSSL's sends it and is refused.
        assertThrows(SSLException.class, () -> handshake(client, server));
    }

    @ParameterizedTest
    @MethodSource("providers")
    void onlyEnrollmentAcceptsAnAgentsBootstrapCertificate(SslProvider provider) throws Exception {
        SslContext server = GrpcTls.server(provider, bootstrapAgent.keys().getPrivate(), chain(bootstrapAgent), chain(ca));
        SslContext client = GrpcTls.client(provider, controller.keys().getPrivate(), chain(controller), chain(ca));
        SSLException e = assertThrows(SSLException.class, () -> handshake(client, server));
        assertTrue(causes(e).contains("the agent presents a bootstrap certificate"), causes(e));

        AtomicReference<X509Certificate> presented = new AtomicReference<>();
        SslContext enrolling = GrpcTls.enrollmentClient(provider, controller.keys().getPrivate(), chain(controller), chain(ca),
                presented::set);
        handshake(enrolling, server);
        assertEquals(bootstrapAgent.cert(), presented.get());
        assertTrue(BootstrapCertificate.is(presented.get()));
        assertTrue(!BootstrapCertificate.is(agent.cert()));
    }

    @Test
    void thePreloadReadsAheadTheJdkClassThatHoldsItsPublicRootCas() throws Exception {
        // A wrong name would make the read-ahead do nothing, silently: the first handshake would
        // then read the JDK's whole cacerts store on the connection's own thread.
        Class<?> anchors = Class.forName(GrpcTls.ANCHOR_CERTIFICATES, false, null);
        assertEquals("java.base", anchors.getModule().getName());
    }

    @Test
    void anUnknownProviderIsRefusedByName() {
        System.setProperty(GrpcTls.PROVIDER_PROPERTY, "gnutls");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, GrpcTls::requested);
        assertEquals("-Dkiln.tls.provider=gnutls is not a TLS provider; use openssl (the default) or jdk", e.getMessage());
        System.setProperty(GrpcTls.PROVIDER_PROPERTY, "jdk");
        assertEquals(SslProvider.JDK, GrpcTls.provider());
        assertEquals("the JDK's (-Dkiln.tls.provider=jdk)", GrpcTls.describe());
    }

    @Test
    void pemMaterialReadsCertificateChainsAndPkcs8Keys() throws Exception {
        byte[] chainPem = (pem("CERTIFICATE", agent.cert().getEncoded()) + pem("CERTIFICATE", ca.cert().getEncoded()))
                .getBytes(StandardCharsets.US_ASCII);
        assertArrayEquals(new X509Certificate[] {agent.cert(), ca.cert()}, PemMaterial.certificates(chainPem, "agent.crt"));

        byte[] keyPem = pem("PRIVATE KEY", agent.keys().getPrivate().getEncoded()).getBytes(StandardCharsets.US_ASCII);
        assertEquals(agent.keys().getPrivate(), PemMaterial.pkcs8Key(keyPem, "agent.key").orElseThrow());

        byte[] traditional = pem("EC PRIVATE KEY", new byte[] {1, 2, 3}).getBytes(StandardCharsets.US_ASCII);
        assertTrue(PemMaterial.pkcs8Key(traditional, "agent.key").isEmpty(), "another key form is left to the caller");

        java.io.IOException none = assertThrows(java.io.IOException.class,
                () -> PemMaterial.certificates(new byte[0], "/etc/kiln/tls/agent.crt"));
        assertEquals("/etc/kiln/tls/agent.crt holds no PEM certificate", none.getMessage());

        byte[] garbled = "-----BEGIN PRIVATE KEY-----\n!!!\n-----END PRIVATE KEY-----\n".getBytes(StandardCharsets.US_ASCII);
        GeneralSecurityException bad = assertThrows(GeneralSecurityException.class, () -> PemMaterial.pkcs8Key(garbled, "agent.key"));
        assertTrue(bad.getMessage().startsWith("agent.key holds a PKCS#8 key that is not"), bad.getMessage());
    }

    @Test
    void aServerNeedsACertificateAndACa() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> GrpcTls.server(SslProvider.JDK, agent.keys().getPrivate(), chain(agent), new X509Certificate[0]));
        assertEquals("TLS needs a certificate and at least one trusted CA certificate", e.getMessage());
        assertThrows(IllegalArgumentException.class,
                () -> GrpcTls.server(SslProvider.JDK, null, new X509Certificate[0], chain(ca)));
    }

    /** Runs a TLS handshake between a client and a server engine in memory; returns {client, server}. */
    private static SSLEngine[] handshake(SslContext clientContext, SslContext serverContext) throws SSLException {
        SSLEngine client = clientContext.newEngine(ByteBufAllocator.DEFAULT, AGENT_NAME, 7443);
        SSLEngine server = serverContext.newEngine(ByteBufAllocator.DEFAULT);
        ByteBuffer toServer = ByteBuffer.allocate(1 << 17);
        ByteBuffer toClient = ByteBuffer.allocate(1 << 17);
        ByteBuffer app = ByteBuffer.allocate(1 << 17);
        ByteBuffer none = ByteBuffer.allocate(0);
        client.beginHandshake();
        server.beginHandshake();
        for (int round = 0; round < 20; round++) {
            if (done(client) && done(server) && toServer.position() == 0 && toClient.position() == 0) {
                return new SSLEngine[] {client, server};
            }
            client.wrap(none, toServer);
            tasks(client);
            toServer.flip();
            server.unwrap(toServer, app);
            toServer.compact();
            tasks(server);
            server.wrap(none, toClient);
            tasks(server);
            toClient.flip();
            client.unwrap(toClient, app);
            toClient.compact();
            tasks(client);
        }
        throw new AssertionError("the handshake did not finish in 20 rounds: client " + client.getHandshakeStatus()
                + ", server " + server.getHandshakeStatus());
    }

    private static boolean done(SSLEngine e) {
        HandshakeStatus s = e.getHandshakeStatus();
        return s == HandshakeStatus.NOT_HANDSHAKING || s == HandshakeStatus.FINISHED;
    }

    private static void tasks(SSLEngine e) {
        for (Runnable task; (task = e.getDelegatedTask()) != null; ) {
            task.run();
        }
    }

    private static String causes(Throwable e) {
        List<String> messages = new ArrayList<>();
        for (Throwable t = e; t != null; t = t.getCause()) {
            messages.add(String.valueOf(t.getMessage()));
        }
        return String.join(" <- ", messages);
    }

    private static X509Certificate[] chain(Issued i) {
        return new X509Certificate[] {i.cert()};
    }

    private static String pem(String type, byte[] der) {
        return "-----BEGIN " + type + "-----\n" + Base64.getMimeEncoder(64, new byte[] {'\n'}).encodeToString(der)
                + "\n-----END " + type + "-----\n";
    }

    /** A certificate for {@code subject}: a self-signed CA when {@code issuer} is null, else a leaf for {@code purpose} (null: no extended key usage). */
    private static Issued issue(String subject, Issued issuer, KeyPurposeId purpose, String dnsName) throws Exception {
        KeyPairGenerator g = KeyPairGenerator.getInstance("EC");
        g.initialize(256);
        KeyPair keys = g.generateKeyPair();
        Instant now = Instant.now();
        X500Name issuerName = new X500Name(issuer == null ? subject : issuer.cert().getSubjectX500Principal().getName());
        JcaX509v3CertificateBuilder b = new JcaX509v3CertificateBuilder(issuerName, BigInteger.valueOf(now.toEpochMilli()),
                Date.from(now.minus(Duration.ofMinutes(5))), Date.from(now.plus(Duration.ofDays(1))), new X500Name(subject),
                keys.getPublic());
        if (issuer == null) {
            b.addExtension(Extension.basicConstraints, true, new BasicConstraints(true));
        } else {
            b.addExtension(Extension.basicConstraints, true, new BasicConstraints(false));
            if (purpose != null) {
                b.addExtension(Extension.extendedKeyUsage, false, new ExtendedKeyUsage(purpose));
            }
            if (dnsName != null) {
                b.addExtension(Extension.subjectAlternativeName, false, new GeneralNames(new GeneralName(GeneralName.dNSName, dnsName)));
            }
        }
        KeyPair signer = issuer == null ? keys : issuer.keys();
        X509Certificate cert = new JcaX509CertificateConverter().getCertificate(
                b.build(new JcaContentSignerBuilder("SHA256withECDSA").build(signer.getPrivate())));
        return new Issued(keys, cert);
    }
}
