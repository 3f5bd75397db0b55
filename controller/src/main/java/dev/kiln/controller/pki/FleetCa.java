package dev.kiln.controller.pki;

import dev.kiln.tls.BootstrapCertificate;
import org.bouncycastle.asn1.x500.X500Name;
import org.bouncycastle.asn1.x500.X500NameBuilder;
import org.bouncycastle.asn1.x500.style.BCStyle;
import org.bouncycastle.asn1.x509.BasicConstraints;
import org.bouncycastle.asn1.x509.ExtendedKeyUsage;
import org.bouncycastle.asn1.x509.Extension;
import org.bouncycastle.asn1.x509.GeneralName;
import org.bouncycastle.asn1.x509.GeneralNames;
import org.bouncycastle.asn1.x509.KeyPurposeId;
import org.bouncycastle.asn1.x509.KeyUsage;
import org.bouncycastle.cert.X509v3CertificateBuilder;
import org.bouncycastle.cert.jcajce.JcaX509CertificateConverter;
import org.bouncycastle.cert.jcajce.JcaX509ExtensionUtils;
import org.bouncycastle.cert.jcajce.JcaX509v3CertificateBuilder;
import org.bouncycastle.operator.OperatorCreationException;
import org.bouncycastle.operator.jcajce.JcaContentSignerBuilder;

import java.io.IOException;
import java.math.BigInteger;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.PrivateKey;
import java.security.PublicKey;
import java.security.SecureRandom;
import java.security.cert.X509Certificate;
import java.security.spec.ECGenParameterSpec;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Date;
import java.util.List;

/**
 * The fleet's certificate authority. Every agent's server certificate and the controller's
 * client certificate are issued by it; agents trust only client certificates that chain to it,
 * and the controller trusts only agent certificates that chain to it. Keys are ECDSA P-256.
 */
public final class FleetCa {

    private static final SecureRandom RANDOM = new SecureRandom();

    private final X509Certificate certificate;
    private final PrivateKey privateKey;

    private FleetCa(X509Certificate certificate, PrivateKey privateKey) {
        this.certificate = certificate;
        this.privateKey = privateKey;
    }

    /**
     * Creates a new CA with a self-signed certificate.
     *
     * @param name      the CA's common name, e.g. "kiln fleet CA (alice@laptop)"
     * @param notBefore start of validity
     * @param notAfter  end of validity
     */
    public static FleetCa create(String name, Instant notBefore, Instant notAfter) {
        KeyPair keys = newKeyPair();
        X500Name subject = name(name);
        try {
            JcaX509ExtensionUtils ext = new JcaX509ExtensionUtils();
            X509v3CertificateBuilder b = new JcaX509v3CertificateBuilder(subject, serial(),
                    Date.from(notBefore), Date.from(notAfter), subject, keys.getPublic())
                    .addExtension(Extension.basicConstraints, true, new BasicConstraints(0))
                    .addExtension(Extension.keyUsage, true, new KeyUsage(KeyUsage.keyCertSign | KeyUsage.cRLSign))
                    .addExtension(Extension.subjectKeyIdentifier, false, ext.createSubjectKeyIdentifier(keys.getPublic()));
            return new FleetCa(sign(b, keys.getPrivate()), keys.getPrivate());
        } catch (GeneralSecurityException | IOException e) {
            throw new IllegalStateException("cannot create the fleet CA: " + e.getMessage(), e);
        }
    }

    /** Loads an existing CA from its PEM certificate and key. */
    public static FleetCa load(Path cert, Path key) throws IOException {
        return new FleetCa(Pem.readCertificate(cert), Pem.readPrivateKey(key));
    }

    public X509Certificate certificate() {
        return certificate;
    }

    public PrivateKey privateKey() {
        return privateKey;
    }

    /** Issues a client certificate (TLS client authentication only), e.g. for the controller. */
    public IssuedCertificate issueClient(String commonName, Instant notBefore, Instant notAfter) {
        return issue(commonName, KeyPurposeId.id_kp_clientAuth, List.of(), List.of(), notBefore, notAfter);
    }

    /**
     * Issues an agent's server certificate (TLS server authentication only).
     *
     * @param dnsNames host names the controller may use to reach it (subject alternative names)
     * @param ips      IP addresses the controller may use to reach it
     */
    public IssuedCertificate issueServer(String commonName, List<String> dnsNames, List<String> ips,
                                         Instant notBefore, Instant notAfter) {
        return issue(commonName, KeyPurposeId.id_kp_serverAuth, dnsNames, ips, notBefore, notAfter);
    }

    /**
     * Issues a bootstrap server certificate ({@link BootstrapCertificate}) and its key for user
     * data: the agent presents it until it enrolls a key of its own, and the controller accepts it
     * for enrollment only. Give it minutes of validity, never the instance's lifetime.
     */
    public IssuedCertificate issueBootstrap(String commonName, List<String> dnsNames, List<String> ips,
                                            Instant notBefore, Instant notAfter) {
        KeyPair keys = newKeyPair();
        X500Name subject = new X500NameBuilder(BCStyle.INSTANCE).addRDN(BCStyle.O, "kiln")
                .addRDN(BCStyle.OU, BootstrapCertificate.UNIT).addRDN(BCStyle.CN, commonName).build();
        return new IssuedCertificate(sign(subject, keys.getPublic(), KeyPurposeId.id_kp_serverAuth, dnsNames, ips,
                notBefore, notAfter), keys.getPrivate());
    }

    /**
     * Issues an agent's server certificate for a public key the agent generated and keeps
     * (enrollment): the fleet CA signs the key, no private key leaves the agent.
     */
    public X509Certificate issueServerFor(PublicKey key, String commonName, List<String> dnsNames, List<String> ips,
                                          Instant notBefore, Instant notAfter) {
        return sign(name(commonName), key, KeyPurposeId.id_kp_serverAuth, dnsNames, ips, notBefore, notAfter);
    }

    private IssuedCertificate issue(String commonName, KeyPurposeId purpose, List<String> dnsNames, List<String> ips,
                                    Instant notBefore, Instant notAfter) {
        KeyPair keys = newKeyPair();
        return new IssuedCertificate(sign(name(commonName), keys.getPublic(), purpose, dnsNames, ips, notBefore, notAfter),
                keys.getPrivate());
    }

    private X509Certificate sign(X500Name subject, PublicKey key, KeyPurposeId purpose, List<String> dnsNames,
                                 List<String> ips, Instant notBefore, Instant notAfter) {
        String commonName = subject.toString();
        try {
            JcaX509ExtensionUtils ext = new JcaX509ExtensionUtils();
            X509v3CertificateBuilder b = new JcaX509v3CertificateBuilder(certificate, serial(),
                    Date.from(notBefore), Date.from(notAfter), subject, key)
                    .addExtension(Extension.basicConstraints, true, new BasicConstraints(false))
                    .addExtension(Extension.keyUsage, true, new KeyUsage(KeyUsage.digitalSignature))
                    .addExtension(Extension.extendedKeyUsage, false, new ExtendedKeyUsage(purpose))
                    .addExtension(Extension.authorityKeyIdentifier, false, ext.createAuthorityKeyIdentifier(certificate))
                    .addExtension(Extension.subjectKeyIdentifier, false, ext.createSubjectKeyIdentifier(key));
            List<GeneralName> names = new ArrayList<>();
            dnsNames.forEach(n -> names.add(new GeneralName(GeneralName.dNSName, n)));
            ips.forEach(ip -> names.add(new GeneralName(GeneralName.iPAddress, ip)));
            if (!names.isEmpty()) {
                b.addExtension(Extension.subjectAlternativeName, false, new GeneralNames(names.toArray(GeneralName[]::new)));
            }
            return sign(b, privateKey);
        } catch (GeneralSecurityException | IOException e) {
            throw new IllegalStateException("cannot issue a certificate for " + commonName + ": " + e.getMessage(), e);
        }
    }

    private static X509Certificate sign(X509v3CertificateBuilder b, PrivateKey signer) throws GeneralSecurityException {
        try {
            return new JcaX509CertificateConverter().getCertificate(
                    b.build(new JcaContentSignerBuilder("SHA256withECDSA").build(signer)));
        } catch (OperatorCreationException e) {
            throw new GeneralSecurityException(e);
        }
    }

    private static KeyPair newKeyPair() {
        try {
            KeyPairGenerator g = KeyPairGenerator.getInstance("EC");
            g.initialize(new ECGenParameterSpec("secp256r1"), RANDOM);
            return g.generateKeyPair();
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("no EC P-256 support in this JVM", e);
        }
    }

    private static X500Name name(String commonName) {
        return new X500NameBuilder(BCStyle.INSTANCE).addRDN(BCStyle.O, "kiln").addRDN(BCStyle.CN, commonName).build();
    }

    private static BigInteger serial() {
        return new BigInteger(127, RANDOM).add(BigInteger.ONE);
    }
}
