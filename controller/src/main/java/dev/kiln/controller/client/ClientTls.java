package dev.kiln.controller.client;

import dev.kiln.controller.ExitCodes;
import dev.kiln.controller.KilnException;
import dev.kiln.controller.config.KilnPaths;
import dev.kiln.controller.pki.FleetInit;
import dev.kiln.controller.pki.Pem;
import dev.kiln.tls.GrpcTls;
import dev.kiln.tls.PemMaterial;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslProvider;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.PrivateKey;
import java.security.cert.X509Certificate;
import java.util.Optional;
import java.util.function.Consumer;

/**
 * The controller's side of mutual TLS: its client certificate and key, and the fleet CA that
 * agents' certificates must chain to.
 *
 * @param ca   fleet CA certificate (PEM)
 * @param cert client certificate (PEM); null only with {@link #withoutCertificate(Path)}
 * @param key  client key (PKCS#8 PEM); null only with {@link #withoutCertificate(Path)}
 */
public record ClientTls(Path ca, Path cert, Path key) {

    public ClientTls {
        if (ca == null || (cert == null) != (key == null)) {
            throw new IllegalArgumentException("client TLS needs a CA certificate, and a certificate with its key or neither");
        }
    }

    /**
     * Material without a client certificate: a client built from it presents none, and agents
     * refuse it. The CLI never makes one; tests do, to show the refusal with the CLI's own client.
     */
    public static ClientTls withoutCertificate(Path ca) {
        return new ClientTls(ca, null, null);
    }

    /** The controller's own material from {@code kiln init}. */
    public static ClientTls of(KilnPaths paths) {
        if (!Files.exists(paths.caCert()) || !Files.exists(paths.clientCert()) || !Files.exists(paths.clientKey())) {
            throw FleetInit.notInitialised(paths);
        }
        return new ClientTls(paths.caCert(), paths.clientCert(), paths.clientKey());
    }

    /** Builds the client TLS context ({@link GrpcTls}: OpenSSL where it loads, else the JDK's). */
    public SslContext sslContext() {
        SslProvider provider;
        try {
            provider = GrpcTls.provider();
        } catch (IllegalArgumentException e) {
            throw new KilnException(ExitCodes.CONFIG, e.getMessage() + " (set in KILN_JAVA_OPTS)", e);
        }
        try {
            return cert == null ? GrpcTls.client(provider, null, new X509Certificate[0], certificates(ca))
                    : GrpcTls.client(provider, privateKey(key), certificates(cert), certificates(ca));
        } catch (IOException | GeneralSecurityException | IllegalArgumentException e) {
            throw new KilnException(ExitCodes.CONFIG, "cannot use the controller's TLS material (" + cert + ", "
                    + key + ", " + ca + "): " + e.getMessage(), e);
        }
    }

    /**
     * The client TLS context for enrollment only: it also accepts an agent's bootstrap
     * certificate, and tells {@code presented} which certificate the agent presented.
     */
    public SslContext enrollmentContext(Consumer<X509Certificate> presented) {
        try {
            return GrpcTls.enrollmentClient(GrpcTls.provider(), privateKey(key), certificates(cert), certificates(ca), presented);
        } catch (IOException | GeneralSecurityException | IllegalArgumentException e) {
            throw new KilnException(ExitCodes.CONFIG, "cannot use the controller's TLS material (" + cert + ", "
                    + key + ", " + ca + "): " + e.getMessage(), e);
        }
    }

    /** Every certificate in a PEM file, in order. */
    static X509Certificate[] certificates(Path pem) throws IOException, GeneralSecurityException {
        return PemMaterial.certificates(Files.readAllBytes(pem), pem.toString());
    }

    /** The key in a PEM file: PKCS#8 read with the JDK, any other form through {@link Pem#readPrivateKey(Path)}. */
    static PrivateKey privateKey(Path pem) throws IOException, GeneralSecurityException {
        Optional<PrivateKey> pkcs8 = PemMaterial.pkcs8Key(Files.readAllBytes(pem), pem.toString());
        return pkcs8.isPresent() ? pkcs8.get() : Pem.readPrivateKey(pem);
    }
}
