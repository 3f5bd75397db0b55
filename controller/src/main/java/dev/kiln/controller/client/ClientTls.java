package dev.kiln.controller.client;

import dev.kiln.controller.ExitCodes;
import dev.kiln.controller.KilnException;
import dev.kiln.controller.config.KilnPaths;
import dev.kiln.controller.pki.FleetInit;
import dev.kiln.controller.pki.Pem;
import io.grpc.netty.GrpcSslContexts;
import io.netty.handler.ssl.SslContext;

import dev.kiln.controller.pki.Pem;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyFactory;
import java.security.PrivateKey;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.security.spec.InvalidKeySpecException;
import java.security.spec.PKCS8EncodedKeySpec;
import java.util.Base64;

/**
 * The controller's side of mutual TLS: its client certificate and key, and the fleet CA that
 * agents' certificates must chain to.
 *
 * @param ca   fleet CA certificate (PEM)
 * @param cert client certificate (PEM)
 * @param key  client key (PKCS#8 PEM)
 */
public record ClientTls(Path ca, Path cert, Path key) {

    /** The controller's own material from {@code kiln init}. */
    public static ClientTls of(KilnPaths paths) {
        if (!Files.exists(paths.caCert()) || !Files.exists(paths.clientCert()) || !Files.exists(paths.clientKey())) {
            throw FleetInit.notInitialised(paths);
        }
        return new ClientTls(paths.caCert(), paths.clientCert(), paths.clientKey());
    }

    /**
     * Builds the client TLS context. The PEM files are read with the JDK alone and handed to Netty
     * as objects in a JKS key store: given file names, Netty parses them with BouncyCastle when it
     * is on the class path (registering its whole provider, about 800 classes) and stores the key
     * in a PKCS#12 key store (PBKDF2, 10,000 rounds); together that was a third of a second of
     * every {@code kiln} command that talks to an agent (docs/benchmarks.md).
     */
    public SslContext sslContext() {
        try {
            return GrpcSslContexts.forClient()
                    .keyStoreType("JKS")
                    .trustManager(certificates(ca))
                    .keyManager(privateKey(key), certificates(cert))
                    .build();
        } catch (IOException | GeneralSecurityException | IllegalArgumentException e) {
            throw new KilnException(ExitCodes.CONFIG, "cannot use the controller's TLS material (" + cert + ", "
                    + key + ", " + ca + "): " + e.getMessage(), e);
        }
    }

    /** Every certificate in a PEM file, in order. */
    static X509Certificate[] certificates(Path pem) throws IOException, GeneralSecurityException {
        try (InputStream in = Files.newInputStream(pem)) {
            X509Certificate[] certs = CertificateFactory.getInstance("X.509").generateCertificates(in).stream()
                    .map(X509Certificate.class::cast).toArray(X509Certificate[]::new);
            if (certs.length == 0) {
                throw new IOException(pem + " holds no PEM certificate");
            }
            return certs;
        }
    }

    /**
     * An unencrypted PKCS#8 private key ({@code BEGIN PRIVATE KEY}, as {@code kiln init} writes it),
     * read with the JDK; any other PEM key form goes through {@link Pem#readPrivateKey(Path)}.
     */
    static PrivateKey privateKey(Path pem) throws IOException, GeneralSecurityException {
        String text = Files.readString(pem, StandardCharsets.US_ASCII);
        String begin = "-----BEGIN PRIVATE KEY-----";
        String end = "-----END PRIVATE KEY-----";
        int from = text.indexOf(begin);
        int to = text.indexOf(end);
        if (from < 0 || to < from) {
            return Pem.readPrivateKey(pem);
        }
        byte[] der = Base64.getMimeDecoder().decode(text.substring(from + begin.length(), to));
        PKCS8EncodedKeySpec spec = new PKCS8EncodedKeySpec(der);
        GeneralSecurityException last = null;
        for (String algorithm : new String[] {"EC", "RSA", "Ed25519"}) {
            try {
                return KeyFactory.getInstance(algorithm).generatePrivate(spec);
            } catch (InvalidKeySpecException e) {
                last = e;
            }
        }
        throw new InvalidKeySpecException(pem + " holds a PKCS#8 key that is not EC, RSA or Ed25519", last);
    }
}
