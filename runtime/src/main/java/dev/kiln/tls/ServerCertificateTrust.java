package dev.kiln.tls;

import javax.net.ssl.SSLEngine;
import javax.net.ssl.X509ExtendedTrustManager;
import java.net.Socket;
import java.security.cert.CertificateException;
import java.security.cert.X509Certificate;
import java.util.function.Consumer;

/**
 * The controller's check of an agent's certificate: the JDK's PKIX check against the fleet CA
 * (validity, chain, and the host name grpc-java asks for), then Kiln's own rule on bootstrap
 * certificates ({@link BootstrapCertificate}). Every call but enrollment refuses a bootstrap
 * certificate, so the key user data carries can serve nothing but enrollment, and only while
 * the certificate is valid (minutes after launch).
 */
public final class ServerCertificateTrust extends X509ExtendedTrustManager {

    private final X509ExtendedTrustManager pkix;
    private final boolean acceptBootstrap;
    private final Consumer<X509Certificate> presented;

    /**
     * @param pkix            the JDK's trust manager over the fleet CA
     * @param acceptBootstrap true only for enrollment
     * @param presented       told the agent's certificate once it passed every check
     */
    public ServerCertificateTrust(X509ExtendedTrustManager pkix, boolean acceptBootstrap, Consumer<X509Certificate> presented) {
        this.pkix = pkix;
        this.acceptBootstrap = acceptBootstrap;
        this.presented = presented;
    }

    @Override
    public void checkServerTrusted(X509Certificate[] chain, String authType, SSLEngine engine) throws CertificateException {
        pkix.checkServerTrusted(chain, authType, engine);
        kilnRules(chain);
    }

    @Override
    public void checkServerTrusted(X509Certificate[] chain, String authType, Socket socket) throws CertificateException {
        pkix.checkServerTrusted(chain, authType, socket);
        kilnRules(chain);
    }

    @Override
    public void checkServerTrusted(X509Certificate[] chain, String authType) throws CertificateException {
        pkix.checkServerTrusted(chain, authType);
        kilnRules(chain);
    }

    private void kilnRules(X509Certificate[] chain) throws CertificateException {
        if (!acceptBootstrap && BootstrapCertificate.is(chain[0])) {
            throw new CertificateException("the agent presents a bootstrap certificate (" + chain[0].getSubjectX500Principal()
                    + "), which serves enrollment only; it has not enrolled, or someone replays its user data");
        }
        presented.accept(chain[0]);
    }

    @Override
    public void checkClientTrusted(X509Certificate[] chain, String authType, SSLEngine engine) throws CertificateException {
        throw new CertificateException("the controller checks no client certificates");
    }

    @Override
    public void checkClientTrusted(X509Certificate[] chain, String authType, Socket socket) throws CertificateException {
        throw new CertificateException("the controller checks no client certificates");
    }

    @Override
    public void checkClientTrusted(X509Certificate[] chain, String authType) throws CertificateException {
        throw new CertificateException("the controller checks no client certificates");
    }

    @Override
    public X509Certificate[] getAcceptedIssuers() {
        return pkix.getAcceptedIssuers();
    }
}
