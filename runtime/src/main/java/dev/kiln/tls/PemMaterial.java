package dev.kiln.tls;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.KeyFactory;
import java.security.PrivateKey;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.security.spec.InvalidKeySpecException;
import java.security.spec.PKCS8EncodedKeySpec;
import java.util.Base64;
import java.util.Optional;

/**
 * The PEM material of Kiln's mutual TLS (certificates and PKCS#8 keys, as {@code kiln init} and
 * {@code kiln launch} write them), read with the JDK alone, for both ends of the gRPC connection.
 * Handed file names or streams, Netty parses PEM with BouncyCastle when it is on the class path
 * (instantiating its whole JCA provider, about 800 classes) and keeps the key in a PKCS#12 store
 * (PBKDF2, 10,000 iterations), on cold code in every CLI command and agent start
 * (docs/performance.md). {@link GrpcTls} builds the contexts from these objects.
 */
public final class PemMaterial {

    private static final String BEGIN_KEY = "-----BEGIN PRIVATE KEY-----";
    private static final String END_KEY = "-----END PRIVATE KEY-----";

    private PemMaterial() {
    }

    /** Every certificate in PEM text, in order; at least one. */
    public static X509Certificate[] certificates(byte[] pem, String what) throws IOException, GeneralSecurityException {
        X509Certificate[] certs = CertificateFactory.getInstance("X.509").generateCertificates(new ByteArrayInputStream(pem))
                .stream().map(X509Certificate.class::cast).toArray(X509Certificate[]::new);
        if (certs.length == 0) {
            throw new IOException(what + " holds no PEM certificate");
        }
        return certs;
    }

    /**
     * The unencrypted PKCS#8 key ({@code BEGIN PRIVATE KEY}) in PEM text, if that is what it holds;
     * empty for any other form (a traditional {@code BEGIN EC PRIVATE KEY}, say), which the caller
     * reads its old way.
     */
    public static Optional<PrivateKey> pkcs8Key(byte[] pem, String what) throws GeneralSecurityException {
        String text = new String(pem, StandardCharsets.US_ASCII);
        int from = text.indexOf(BEGIN_KEY);
        int to = text.indexOf(END_KEY);
        if (from < 0 || to < from) {
            return Optional.empty();
        }
        PKCS8EncodedKeySpec spec;
        try {
            spec = new PKCS8EncodedKeySpec(Base64.getMimeDecoder().decode(text.substring(from + BEGIN_KEY.length(), to)));
        } catch (IllegalArgumentException e) {
            throw new InvalidKeySpecException(what + " holds a PKCS#8 key that is not valid base64", e);
        }
        GeneralSecurityException last = null;
        for (String algorithm : new String[] {"EC", "RSA", "Ed25519"}) {
            try {
                return Optional.of(KeyFactory.getInstance(algorithm).generatePrivate(spec));
            } catch (InvalidKeySpecException e) {
                last = e;
            }
        }
        throw new InvalidKeySpecException(what + " holds a PKCS#8 key that is not EC, RSA or Ed25519", last);
    }
}
