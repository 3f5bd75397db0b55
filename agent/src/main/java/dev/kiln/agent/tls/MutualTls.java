package dev.kiln.agent.tls;

import dev.kiln.agent.config.TlsSettings;
import dev.kiln.tls.ClientCertificateTrust;
import dev.kiln.tls.GrpcTls;
import dev.kiln.tls.PemMaterial;
import io.grpc.netty.GrpcSslContexts;
import io.netty.handler.ssl.ClientAuth;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslContextBuilder;
import io.netty.handler.ssl.SslProvider;

import javax.net.ssl.SSLException;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.PrivateKey;
import java.util.Arrays;
import java.util.Optional;

/**
 * Builds the gRPC server's TLS context: the agent's certificate and key, and a trust store of
 * exactly the fleet CA, with client certificates required. A client without a certificate, with
 * one from another CA, with one expired or not yet valid, or with one not issued for TLS client
 * authentication fails the handshake ({@link ClientCertificateTrust}); {@link TlsHandshakeLog}
 * logs each refusal.
 */
public final class MutualTls {

    private MutualTls() {
    }

    /**
     * @throws IllegalArgumentException naming the setting when material is missing or unreadable
     */
    public static SslContext serverContext(TlsSettings tls) {
        byte[] cert = material("kiln.tls.cert", tls.cert());
        byte[] key = material("kiln.tls.key", tls.key());
        byte[] ca = material("kiln.tls.ca", tls.ca());
        SslProvider provider = GrpcTls.provider(); // a wrong -Dkiln.tls.provider is its own error, not the material's
        Built built = last;
        if (built != null && built.provider == provider && Arrays.equals(built.cert, cert)
                && Arrays.equals(built.key, key) && Arrays.equals(built.ca, ca)) {
            return built.context;
        }
        SslContext context = build(provider, cert, key, ca);
        last = new Built(provider, cert, key, ca, context);
        return context;
    }

    /**
     * The last context built, with what it was built from: the launcher checks the material at
     * start-up and the gRPC server then asks for its context; the same material gives the same
     * context, never a second native one (OpenSSL's, which is freed only when collected).
     */
    private static volatile Built last;

    private record Built(SslProvider provider, byte[] cert, byte[] key, byte[] ca, SslContext context) {
    }

    private static SslContext build(SslProvider provider, byte[] cert, byte[] key, byte[] ca) {
        try {
            // GrpcTls builds it (OpenSSL, or the JDK's), with the key in an in-memory JKS store.
            Optional<PrivateKey> pkcs8 = PemMaterial.pkcs8Key(key, "kiln.tls.key");
            if (pkcs8.isEmpty()) {
                // Another PEM key form (a traditional EC or RSA key): Netty reads it (into a PKCS#12
                // store of its own: slower to build, the same TLS).
                try (InputStream certIn = new ByteArrayInputStream(cert);
                     InputStream keyIn = new ByteArrayInputStream(key)) {
                    return GrpcSslContexts.configure(SslContextBuilder.forServer(certIn, keyIn), provider)
                            .trustManager(ClientCertificateTrust.of(PemMaterial.certificates(ca, "kiln.tls.ca"),
                                    provider == SslProvider.OPENSSL))
                            .clientAuth(ClientAuth.REQUIRE).build();
                }
            }
            return GrpcTls.server(provider, pkcs8.get(), PemMaterial.certificates(cert, "kiln.tls.cert"),
                    PemMaterial.certificates(ca, "kiln.tls.ca"));
        } catch (SSLException | GeneralSecurityException | IllegalArgumentException e) {
            throw new IllegalArgumentException("the TLS material in kiln.tls.cert/kiln.tls.key/kiln.tls.ca "
                    + "cannot be used: " + rootMessage(e), e);
        } catch (IOException e) {
            throw new IllegalArgumentException("cannot read TLS material: " + e.getMessage(), e);
        }
    }

    /** The PEM bytes of a setting that holds either PEM text or a file path. */
    public static byte[] material(String key, String value) {
        if (value == null || value.isBlank()) {
            throw new IllegalArgumentException(key + " is not set; the gRPC server requires mutual TLS "
                    + "(set kiln.tls.cert, kiln.tls.key and kiln.tls.ca; `kiln up --local` and `kiln launch` do this)");
        }
        if (value.strip().startsWith("-----BEGIN")) {
            return value.strip().getBytes(StandardCharsets.US_ASCII);
        }
        Path path = Path.of(value.strip());
        try {
            return Files.readAllBytes(path);
        } catch (IOException e) {
            throw new IllegalArgumentException(key + ": cannot read " + path + " (" + e.getClass().getSimpleName()
                    + (e.getMessage() == null ? "" : ": " + e.getMessage()) + ")", e);
        }
    }

    private static String rootMessage(Throwable e) {
        Throwable t = e;
        while (t.getCause() != null && t.getCause() != t) {
            t = t.getCause();
        }
        return t.getMessage() == null ? t.toString() : t.getMessage();
    }
}
