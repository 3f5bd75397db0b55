package dev.kiln.controller.pki;

import java.security.PrivateKey;
import java.security.cert.X509Certificate;

/**
 * A certificate issued by the fleet CA and its private key.
 *
 * @param certificate the certificate
 * @param privateKey  its key
 */
public record IssuedCertificate(X509Certificate certificate, PrivateKey privateKey) {

    public String certificatePem() {
        return Pem.encode(certificate);
    }

    public String privateKeyPem() {
        return Pem.encode(privateKey);
    }
}
