package dev.kiln.tls;

import io.netty.handler.codec.http2.Http2SecurityUtil;
import io.netty.handler.ssl.ApplicationProtocolConfig;
import io.netty.handler.ssl.ApplicationProtocolConfig.Protocol;
import io.netty.handler.ssl.ApplicationProtocolConfig.SelectedListenerFailureBehavior;
import io.netty.handler.ssl.ApplicationProtocolConfig.SelectorFailureBehavior;
import io.netty.handler.ssl.ClientAuth;
import io.netty.handler.ssl.JdkSslContext;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SupportedCipherSuiteFilter;

import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;
import javax.net.ssl.TrustManagerFactory;
import java.io.IOException;
import java.security.GeneralSecurityException;
import java.security.KeyStore;
import java.security.PrivateKey;
import java.security.cert.X509Certificate;

/**
 * The TLS contexts of Kiln's gRPC connections (mutual TLS, the fleet CA as the only trust anchor),
 * built from the JDK's own {@link SSLContext} and handed to Netty whole.
 *
 * <p>Why not Netty's {@code SslContextBuilder}: on the server side its {@code JdkSslServerContext}
 * class, when first used, checks what the JDK supports by loading a built-in RSA test key (through
 * BouncyCastle when it is on the class path) into a PKCS#12 store, and it keeps the real key in
 * another PKCS#12 store; each store entry costs PBKDF2 with 10,000 rounds, run cold. A JFR profile
 * of the agent's start put 0.25 s of its 1.2 s there (docs/benchmarks.md). Here the key sits in
 * an in-memory JKS store, read by the JDK's key manager; the gRPC settings are those of
 * {@code GrpcSslContexts.configure} for the JDK provider: HTTP/2's cipher suites and ALPN "h2".
 */
public final class GrpcTls {

    /** gRPC speaks HTTP/2, negotiated by ALPN (as grpc-netty's GrpcSslContexts configures it). */
    private static final ApplicationProtocolConfig ALPN_H2 = new ApplicationProtocolConfig(Protocol.ALPN,
            SelectorFailureBehavior.NO_ADVERTISE, SelectedListenerFailureBehavior.ACCEPT, "h2");

    /** The store is in memory only; its password protects nothing. */
    private static final char[] STORE_PASSWORD = "kiln".toCharArray();

    private GrpcTls() {
    }

    /** The agent's side: its key and certificate chain; clients must present a certificate from {@code trusted}. */
    public static SslContext server(PrivateKey key, X509Certificate[] chain, X509Certificate[] trusted)
            throws GeneralSecurityException, IOException {
        return new JdkSslContext(jdkContext(key, chain, trusted), false, Http2SecurityUtil.CIPHERS,
                SupportedCipherSuiteFilter.INSTANCE, ALPN_H2, ClientAuth.REQUIRE, null, false);
    }

    /** The controller's side: its client key and chain; servers must present a certificate from {@code trusted}. */
    public static SslContext client(PrivateKey key, X509Certificate[] chain, X509Certificate[] trusted)
            throws GeneralSecurityException, IOException {
        return new JdkSslContext(jdkContext(key, chain, trusted), true, Http2SecurityUtil.CIPHERS,
                SupportedCipherSuiteFilter.INSTANCE, ALPN_H2, ClientAuth.NONE, null, false);
    }

    private static SSLContext jdkContext(PrivateKey key, X509Certificate[] chain, X509Certificate[] trusted)
            throws GeneralSecurityException, IOException {
        if (chain.length == 0 || trusted.length == 0) {
            throw new IllegalArgumentException("TLS needs a certificate and at least one trusted CA certificate");
        }
        KeyStore keys = KeyStore.getInstance("JKS");
        keys.load(null, null);
        keys.setKeyEntry("kiln", key, STORE_PASSWORD, chain);
        KeyManagerFactory kmf = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
        kmf.init(keys, STORE_PASSWORD);

        KeyStore anchors = KeyStore.getInstance("JKS");
        anchors.load(null, null);
        for (int i = 0; i < trusted.length; i++) {
            anchors.setCertificateEntry("ca-" + i, trusted[i]);
        }
        TrustManagerFactory tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
        tmf.init(anchors);

        SSLContext context = SSLContext.getInstance("TLS");
        context.init(kmf.getKeyManagers(), tmf.getTrustManagers(), null);
        return context;
    }
}
