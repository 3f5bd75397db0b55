package dev.kiln.tls;

import io.netty.handler.codec.http2.Http2SecurityUtil;
import io.netty.handler.ssl.ApplicationProtocolConfig;
import io.netty.handler.ssl.ApplicationProtocolConfig.Protocol;
import io.netty.handler.ssl.ApplicationProtocolConfig.SelectedListenerFailureBehavior;
import io.netty.handler.ssl.ApplicationProtocolConfig.SelectorFailureBehavior;
import io.netty.handler.ssl.ClientAuth;
import io.netty.handler.ssl.JdkSslContext;
import io.netty.handler.ssl.OpenSsl;
import io.netty.handler.ssl.OpenSslCachingX509KeyManagerFactory;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslContextBuilder;
import io.netty.handler.ssl.SslProvider;
import io.netty.handler.ssl.SupportedCipherSuiteFilter;

import io.netty.handler.ssl.util.KeyManagerFactoryWrapper;

import javax.net.ssl.KeyManager;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;
import javax.net.ssl.TrustManager;
import javax.net.ssl.TrustManagerFactory;
import javax.net.ssl.X509ExtendedTrustManager;
import java.io.IOException;
import java.security.GeneralSecurityException;
import java.security.KeyStore;
import java.security.PrivateKey;
import java.security.cert.X509Certificate;
import java.util.function.Consumer;

/**
 * The TLS contexts of Kiln's gRPC connections (mutual TLS, the fleet CA as the only trust anchor),
 * on OpenSSL (BoringSSL, from netty-tcnative) where it loads, on the JDK's own TLS otherwise.
 *
 * <p>Why OpenSSL: a handshake and AES-GCM in native code need no JIT warm-up, so both ends spend
 * less CPU per call and a CLI on C1 alone streams logs quickly (the JDK's AES-GCM is quick only
 * once C2 has compiled it; figures in docs/performance.md). Both providers speak the same TLS 1.3,
 * so agents and controllers of either kind work together. {@code -Dkiln.tls.provider=jdk} chooses
 * the JDK's on purpose.
 *
 * <p>Either way the key sits in an in-memory JKS store read by the JDK's key manager (behind
 * Netty's caching factory for OpenSSL), not in the PKCS#12 store Netty's {@code SslContextBuilder}
 * would make from a bare key (every PKCS#12 entry costs PBKDF2 with 10,000 iterations, run cold,
 * as does the RSA test key Netty's {@code JdkSslServerContext} loads; docs/performance.md). For the
 * JDK's TLS, the JDK's {@link SSLContext} is handed to Netty whole. The gRPC settings are those of
 * {@code GrpcSslContexts.configure}: HTTP/2's cipher suites and ALPN "h2".
 */
public final class GrpcTls {

    /** The system property that chooses the provider: {@code openssl} (the default) or {@code jdk}. */
    public static final String PROVIDER_PROPERTY = "kiln.tls.provider";

    /** gRPC speaks HTTP/2, negotiated by ALPN (as grpc-netty's GrpcSslContexts configures it). */
    private static final ApplicationProtocolConfig ALPN_H2 = new ApplicationProtocolConfig(Protocol.ALPN,
            SelectorFailureBehavior.NO_ADVERTISE, SelectedListenerFailureBehavior.ACCEPT, "h2");

    /** The store is in memory only; its password protects nothing. */
    private static final char[] STORE_PASSWORD = "kiln".toCharArray();

    private GrpcTls() {
    }

    /**
     * The provider this process uses: OpenSSL unless {@value #PROVIDER_PROPERTY} says {@code jdk}
     * or netty-tcnative cannot load here (another platform, a {@code noexec} temporary directory).
     *
     * @throws IllegalArgumentException for any other value of the property
     */
    public static SslProvider provider() {
        return requested() == SslProvider.OPENSSL && OpenSsl.isAvailable() ? SslProvider.OPENSSL : SslProvider.JDK;
    }

    /**
     * The provider {@value #PROVIDER_PROPERTY} asks for, checked without loading anything.
     *
     * @throws IllegalArgumentException for a value other than {@code openssl} or {@code jdk}
     */
    public static SslProvider requested() {
        String wanted = System.getProperty(PROVIDER_PROPERTY, "openssl").strip();
        return switch (wanted) {
            case "openssl" -> SslProvider.OPENSSL;
            case "jdk" -> SslProvider.JDK;
            default -> throw new IllegalArgumentException("-D" + PROVIDER_PROPERTY + "=" + wanted
                    + " is not a TLS provider; use openssl (the default) or jdk");
        };
    }

    /**
     * Loads OpenSSL (when it is asked for) on a daemon thread, so that the process finds it ready
     * when it builds its first TLS context: netty-tcnative's class initialisation, extracting and
     * loading its library and BoringSSL's own set-up take about 0.1 s of a cold JVM, which a
     * process at start-up can spend on its other core; then the JDK's list of public root CAs,
     * which the first check of a server's certificate reads. A wrong property value is left for
     * {@link #provider()} to report.
     */
    public static void preload() {
        try {
            if (requested() != SslProvider.OPENSSL) {
                return;
            }
        } catch (IllegalArgumentException e) {
            return;
        }
        Thread loader = new Thread(() -> {
            OpenSsl.isAvailable();
            loadAnchorCertificates();
        }, "kiln-tls-preload");
        loader.setDaemon(true);
        loader.start();
    }

    /**
     * The JDK class that reads the public root CAs when it initialises; its distrust policies
     * (for Symantec's, Entrust's and Camerfirma's roots) ask it during every certificate check.
     */
    static final String ANCHOR_CERTIFICATES = "sun.security.util.AnchorCertificates";

    /**
     * The JDK's list of public root CAs, which its trust manager reads (the whole {@code cacerts}
     * store, about 140 certificates) in the first server check that verifies a host name, to apply
     * its rules for public CAs; read here ahead of the first handshake. Only the fleet CA is
     * trusted either way. A JDK without that class is left as it is.
     */
    private static void loadAnchorCertificates() {
        try {
            Class.forName(ANCHOR_CERTIFICATES, true, null);
        } catch (ClassNotFoundException | LinkageError e) {
            // nothing to read ahead
        }
    }

    /** One line for logs: which TLS this process uses, and why when it is not OpenSSL. */
    public static String describe() {
        if (provider() == SslProvider.OPENSSL) {
            return "OpenSSL (" + OpenSsl.versionString() + ", netty-tcnative)";
        }
        if (chosenJdk()) {
            return "the JDK's (-D" + PROVIDER_PROPERTY + "=jdk)";
        }
        Throwable cause = OpenSsl.unavailabilityCause();
        return "the JDK's, as OpenSSL is unavailable here (" + (cause == null ? "no cause given"
                : cause.getMessage() == null ? cause.toString() : cause.getMessage()) + ")";
    }

    /** True when the JDK's TLS is used although {@value #PROVIDER_PROPERTY} did not ask for it. */
    public static boolean fellBack() {
        return provider() == SslProvider.JDK && !chosenJdk();
    }

    private static boolean chosenJdk() {
        return requested() == SslProvider.JDK;
    }

    /** The agent's side: its key and certificate chain; clients must present a certificate from {@code trusted}. */
    public static SslContext server(PrivateKey key, X509Certificate[] chain, X509Certificate[] trusted)
            throws GeneralSecurityException, IOException {
        return server(provider(), key, chain, trusted);
    }

    /** {@link #server(PrivateKey, X509Certificate[], X509Certificate[])} with an explicit provider. */
    public static SslContext server(SslProvider provider, PrivateKey key, X509Certificate[] chain, X509Certificate[] trusted)
            throws GeneralSecurityException, IOException {
        return build(true, provider, key, chain, trusted);
    }

    /**
     * The controller's side: its client key and chain; servers must present a certificate from
     * {@code trusted}. A null {@code key} with an empty {@code chain} makes a client that presents
     * no certificate, which agents refuse (tests show it with the client the CLI uses).
     */
    public static SslContext client(PrivateKey key, X509Certificate[] chain, X509Certificate[] trusted)
            throws GeneralSecurityException, IOException {
        return client(provider(), key, chain, trusted);
    }

    /** {@link #client(PrivateKey, X509Certificate[], X509Certificate[])} with an explicit provider. */
    public static SslContext client(SslProvider provider, PrivateKey key, X509Certificate[] chain, X509Certificate[] trusted)
            throws GeneralSecurityException, IOException {
        return build(false, provider, key, chain, trusted);
    }

    /**
     * The controller's side for enrollment only: as {@link #client(SslProvider, PrivateKey,
     * X509Certificate[], X509Certificate[])}, but it also accepts an agent's bootstrap certificate
     * ({@link BootstrapCertificate}), and tells {@code presented} which certificate the agent
     * presented, so the caller sees whether the agent still needs to enroll.
     */
    public static SslContext enrollmentClient(SslProvider provider, PrivateKey key, X509Certificate[] chain,
            X509Certificate[] trusted, Consumer<X509Certificate> presented) throws GeneralSecurityException, IOException {
        check(false, key, chain, trusted);
        return build(false, provider, keyManagers(key, chain), serverTrust(trusted, true, presented), trusted);
    }

    /**
     * The agent's side with a key manager of its own: an agent that enrolls changes the key and
     * certificate it presents while it serves, and each handshake asks {@code keyManager} for them.
     */
    public static SslContext server(SslProvider provider, KeyManager keyManager, X509Certificate[] trusted)
            throws GeneralSecurityException, IOException {
        if (trusted.length == 0) {
            throw new IllegalArgumentException("TLS needs at least one trusted CA certificate");
        }
        return build(true, provider, new KeyManagerFactoryWrapper(keyManager), null, trusted);
    }

    /**
     * One side of mutual TLS: the agent's requires the client's certificate and checks it with
     * {@link ClientCertificateTrust} (which also requires the clientAuth extended key usage); the
     * controller's checks the agent's with {@link ServerCertificateTrust}, which refuses bootstrap
     * certificates.
     */
    private static SslContext build(boolean agent, SslProvider provider, PrivateKey key, X509Certificate[] chain,
            X509Certificate[] trusted) throws GeneralSecurityException, IOException {
        check(agent, key, chain, trusted);
        return build(agent, provider, keyManagers(key, chain), agent ? null : serverTrust(trusted, false, c -> { }), trusted);
    }

    private static SslContext build(boolean agent, SslProvider provider, KeyManagerFactory keys, TrustManager clientTrust,
            X509Certificate[] trusted) throws GeneralSecurityException, IOException {
        if (provider == SslProvider.JDK) {
            TrustManager[] trust = agent ? new TrustManager[] {ClientCertificateTrust.of(trusted, false)}
                    : new TrustManager[] {clientTrust};
            SSLContext context = SSLContext.getInstance("TLS");
            context.init(keys.getKeyManagers(), trust, null);
            return new JdkSslContext(context, !agent, Http2SecurityUtil.CIPHERS,
                    SupportedCipherSuiteFilter.INSTANCE, ALPN_H2, agent ? ClientAuth.REQUIRE : ClientAuth.NONE, null, false);
        }
        // For OpenSSL, the key manager wrapped in Netty's caching factory: otherwise each handshake
        // encodes the key and chain again for BoringSSL to parse. It caches by alias, and a key
        // manager that changes its key changes its alias too.
        KeyManagerFactory cached = new OpenSslCachingX509KeyManagerFactory(keys);
        SslContextBuilder builder = agent
                ? SslContextBuilder.forServer(cached).clientAuth(ClientAuth.REQUIRE)
                        .trustManager(ClientCertificateTrust.of(trusted, true))
                : SslContextBuilder.forClient().keyManager(cached).trustManager(clientTrust);
        return builder.sslProvider(provider)
                .ciphers(Http2SecurityUtil.CIPHERS, SupportedCipherSuiteFilter.INSTANCE)
                .applicationProtocolConfig(ALPN_H2).build();
    }

    private static TrustManager serverTrust(X509Certificate[] trusted, boolean acceptBootstrap,
            Consumer<X509Certificate> presented) throws GeneralSecurityException, IOException {
        for (TrustManager tm : trustManagers(trusted).getTrustManagers()) {
            if (tm instanceof X509ExtendedTrustManager pkix) {
                return new ServerCertificateTrust(pkix, acceptBootstrap, presented);
            }
        }
        throw new GeneralSecurityException("the JDK offers no X509ExtendedTrustManager");
    }

    private static void check(boolean agent, PrivateKey key, X509Certificate[] chain, X509Certificate[] trusted) {
        // Only a client may go without a certificate, and then without a key too.
        boolean noIdentity = !agent && key == null && chain.length == 0;
        if (trusted.length == 0 || (!noIdentity && (key == null || chain.length == 0))) {
            throw new IllegalArgumentException("TLS needs a certificate and at least one trusted CA certificate");
        }
    }

    private static KeyManagerFactory keyManagers(PrivateKey key, X509Certificate[] chain)
            throws GeneralSecurityException, IOException {
        KeyStore keys = KeyStore.getInstance("JKS");
        keys.load(null, null);
        if (key != null) { // none: an empty store, never the JVM's default key store
            keys.setKeyEntry("kiln", key, STORE_PASSWORD, chain);
        }
        KeyManagerFactory kmf = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
        kmf.init(keys, STORE_PASSWORD);
        return kmf;
    }

    private static TrustManagerFactory trustManagers(X509Certificate[] trusted) throws GeneralSecurityException, IOException {
        KeyStore anchors = KeyStore.getInstance("JKS");
        anchors.load(null, null);
        for (int i = 0; i < trusted.length; i++) {
            anchors.setCertificateEntry("ca-" + i, trusted[i]);
        }
        TrustManagerFactory tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
        tmf.init(anchors);
        return tmf;
    }
}
