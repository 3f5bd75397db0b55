package dev.kiln.tls;

import io.netty.handler.ssl.OpenSslCertificateException;

import javax.net.ssl.SSLEngine;
import javax.net.ssl.TrustManager;
import javax.net.ssl.TrustManagerFactory;
import javax.net.ssl.X509ExtendedTrustManager;
import java.io.IOException;
import java.net.Socket;
import java.security.GeneralSecurityException;
import java.security.KeyStore;
import java.security.cert.CertificateException;
import java.security.cert.CertificateExpiredException;
import java.security.cert.CertificateNotYetValidException;
import java.security.cert.CertificateParsingException;
import java.security.cert.X509Certificate;
import java.time.Instant;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

/**
 * The agent's check of a client's certificate: it chains to a trusted CA (the fleet CA) by the
 * JDK's PKIX rules, it is valid now, and its extended key usage names TLS client authentication.
 * A certificate without an extended key usage is refused, where the JDK's own check would accept
 * it: only the controller's certificates, issued for clientAuth, may drive an agent.
 *
 * <p>A refusal's message names the certificate and the reason, for the agent's log. On OpenSSL
 * it also carries the X.509 verification error that picks the TLS alert the client receives
 * (unknown_ca, certificate_expired, unsupported_certificate); without it BoringSSL sends
 * internal_error, which explains nothing. Server certificates are not this class's business.
 */
public final class ClientCertificateTrust extends X509ExtendedTrustManager {

    /** The extended key usage of TLS client authentication (RFC 5280, id-kp-clientAuth). */
    public static final String CLIENT_AUTH = "1.3.6.1.5.5.7.3.2";

    /** RFC 5280's names of the extended key usages a refusal may list. */
    private static final Map<String, String> USAGE_NAMES = Map.of(
            "1.3.6.1.5.5.7.3.1", "serverAuth", CLIENT_AUTH, "clientAuth", "1.3.6.1.5.5.7.3.3", "codeSigning",
            "1.3.6.1.5.5.7.3.4", "emailProtection", "1.3.6.1.5.5.7.3.8", "timeStamping",
            "1.3.6.1.5.5.7.3.9", "OCSPSigning", "2.5.29.37.0", "anyExtendedKeyUsage");

    /**
     * Why a certificate is refused, with the X.509 verification error BoringSSL turns into the
     * alert. The numbers are OpenSSL's and BoringSSL's X509_V_ERR_* (x509_vfy.h, x509.h), the
     * values netty-tcnative's CertificateVerifier reads from the native library.
     */
    private enum Refusal {
        UNKNOWN_CA(20), // X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY: unknown_ca
        EXPIRED(10), // X509_V_ERR_CERT_HAS_EXPIRED: certificate_expired
        NOT_YET_VALID(9), // X509_V_ERR_CERT_NOT_YET_VALID
        WRONG_USAGE(26), // X509_V_ERR_INVALID_PURPOSE: unsupported_certificate
        OTHER(28); // X509_V_ERR_CERT_REJECTED

        final int x509Error;

        Refusal(int x509Error) {
            this.x509Error = x509Error;
        }
    }

    private final X509ExtendedTrustManager pkix;
    private final X509Certificate[] trusted;
    private final boolean openSsl;

    private ClientCertificateTrust(X509ExtendedTrustManager pkix, X509Certificate[] trusted, boolean openSsl) {
        this.pkix = pkix;
        this.trusted = trusted.clone();
        this.openSsl = openSsl;
    }

    /**
     * A check that trusts exactly {@code trusted}.
     *
     * @param openSsl whether the TLS context it serves is OpenSSL's (then refusals carry the
     *                verification error that chooses the alert); the JDK's chooses its own alerts
     */
    public static ClientCertificateTrust of(X509Certificate[] trusted, boolean openSsl)
            throws GeneralSecurityException, IOException {
        KeyStore anchors = KeyStore.getInstance("JKS");
        anchors.load(null, null);
        for (int i = 0; i < trusted.length; i++) {
            anchors.setCertificateEntry("ca-" + i, trusted[i]);
        }
        TrustManagerFactory tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
        tmf.init(anchors);
        for (TrustManager tm : tmf.getTrustManagers()) {
            if (tm instanceof X509ExtendedTrustManager x509) {
                return new ClientCertificateTrust(x509, trusted, openSsl);
            }
        }
        throw new GeneralSecurityException("the JDK's " + tmf.getAlgorithm() + " trust manager is not an X509ExtendedTrustManager");
    }

    @Override
    public void checkClientTrusted(X509Certificate[] chain, String authType, SSLEngine engine) throws CertificateException {
        X509Certificate leaf = leaf(chain);
        try {
            pkix.checkClientTrusted(chain, authType, engine);
        } catch (CertificateException e) {
            throw explain(chain, leaf, e);
        }
        requireClientAuth(leaf);
    }

    @Override
    public void checkClientTrusted(X509Certificate[] chain, String authType, Socket socket) throws CertificateException {
        X509Certificate leaf = leaf(chain);
        try {
            pkix.checkClientTrusted(chain, authType, socket);
        } catch (CertificateException e) {
            throw explain(chain, leaf, e);
        }
        requireClientAuth(leaf);
    }

    @Override
    public void checkClientTrusted(X509Certificate[] chain, String authType) throws CertificateException {
        X509Certificate leaf = leaf(chain);
        try {
            pkix.checkClientTrusted(chain, authType);
        } catch (CertificateException e) {
            throw explain(chain, leaf, e);
        }
        requireClientAuth(leaf);
    }

    @Override
    public void checkServerTrusted(X509Certificate[] chain, String authType, SSLEngine engine) throws CertificateException {
        throw new CertificateException("the agent's trust manager checks client certificates only");
    }

    @Override
    public void checkServerTrusted(X509Certificate[] chain, String authType, Socket socket) throws CertificateException {
        throw new CertificateException("the agent's trust manager checks client certificates only");
    }

    @Override
    public void checkServerTrusted(X509Certificate[] chain, String authType) throws CertificateException {
        throw new CertificateException("the agent's trust manager checks client certificates only");
    }

    @Override
    public X509Certificate[] getAcceptedIssuers() {
        return pkix.getAcceptedIssuers();
    }

    private static X509Certificate leaf(X509Certificate[] chain) throws CertificateException {
        if (chain == null || chain.length == 0) {
            throw new CertificateException("no client certificate");
        }
        return chain[0];
    }

    /** After the PKIX check passed: the certificate must also say it is for client authentication. */
    private void requireClientAuth(X509Certificate leaf) throws CertificateException {
        List<String> usages = usages(leaf);
        if (usages == null || !usages.contains(CLIENT_AUTH)) {
            throw refusal(Refusal.WRONG_USAGE, wrongUsage(leaf, usages), null);
        }
    }

    /**
     * Says why the PKIX check refused: the first of these that holds, else the check's own words.
     * Only the wording depends on it; the refusal itself is the PKIX check's.
     */
    private CertificateException explain(X509Certificate[] chain, X509Certificate leaf, CertificateException e) {
        Instant now = Instant.now();
        if (Arrays.stream(chain).noneMatch(this::issuedByTrusted)) {
            return refusal(Refusal.UNKNOWN_CA, name(leaf) + " is not issued by the fleet CA (its issuer is '"
                    + leaf.getIssuerX500Principal().getName() + "')", e);
        }
        if (now.isAfter(leaf.getNotAfter().toInstant())) {
            return refusal(Refusal.EXPIRED, name(leaf) + " expired at " + leaf.getNotAfter().toInstant(), e);
        }
        if (now.isBefore(leaf.getNotBefore().toInstant())) {
            return refusal(Refusal.NOT_YET_VALID, name(leaf) + " is not valid until " + leaf.getNotBefore().toInstant(), e);
        }
        List<String> usages;
        try {
            usages = usages(leaf);
        } catch (CertificateException unreadable) {
            usages = List.of();
        }
        if (usages == null || !usages.contains(CLIENT_AUTH)) {
            return refusal(Refusal.WRONG_USAGE, wrongUsage(leaf, usages), e);
        }
        return refusal(Refusal.OTHER, name(leaf) + " is refused: " + e.getMessage(), e);
    }

    private boolean issuedByTrusted(X509Certificate cert) {
        for (X509Certificate ca : trusted) {
            if (cert.getIssuerX500Principal().equals(ca.getSubjectX500Principal())) {
                try {
                    cert.verify(ca.getPublicKey());
                    return true;
                } catch (GeneralSecurityException notItsSignature) {
                    // Same name, another key: not this CA's certificate.
                }
            }
        }
        return false;
    }

    private static List<String> usages(X509Certificate leaf) throws CertificateException {
        try {
            return leaf.getExtendedKeyUsage();
        } catch (CertificateParsingException e) {
            throw new CertificateException(name(leaf) + " has an unreadable extended key usage", e);
        }
    }

    private static String wrongUsage(X509Certificate leaf, List<String> usages) {
        return name(leaf) + " is not for TLS client authentication ("
                + (usages == null ? "it has no extended key usage" : "its extended key usage is "
                + String.join(", ", usages.stream().map(oid -> USAGE_NAMES.getOrDefault(oid, oid)).toList())) + ")";
    }

    private static String name(X509Certificate cert) {
        return "certificate '" + cert.getSubjectX500Principal().getName() + "'";
    }

    /**
     * The exception for a refusal: on OpenSSL one that carries the verification error (Netty hands
     * it to BoringSSL, which picks the alert from it); on the JDK's TLS the JDK's own types.
     */
    private CertificateException refusal(Refusal why, String message, Throwable cause) {
        if (openSsl) {
            return new OpenSslCertificateException(message, cause, why.x509Error);
        }
        CertificateException e = switch (why) {
            case EXPIRED -> new CertificateExpiredException(message);
            case NOT_YET_VALID -> new CertificateNotYetValidException(message);
            default -> new CertificateException(message);
        };
        if (cause != null) {
            e.initCause(cause);
        }
        return e;
    }

    @Override
    public String toString() {
        return "ClientCertificateTrust" + Arrays.stream(trusted).map(c -> c.getSubjectX500Principal().getName()).toList();
    }
}
