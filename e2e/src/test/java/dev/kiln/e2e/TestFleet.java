package dev.kiln.e2e;

import dev.kiln.controller.client.ClientTls;
import dev.kiln.controller.pki.FleetCa;
import dev.kiln.controller.pki.IssuedCertificate;
import dev.kiln.controller.pki.Pem;

import org.bouncycastle.asn1.x509.BasicConstraints;
import org.bouncycastle.asn1.x509.Extension;
import org.bouncycastle.asn1.x509.KeyUsage;
import org.bouncycastle.cert.X509v3CertificateBuilder;
import org.bouncycastle.cert.jcajce.JcaX509CertificateConverter;
import org.bouncycastle.cert.jcajce.JcaX509v3CertificateBuilder;
import org.bouncycastle.operator.OperatorCreationException;
import org.bouncycastle.operator.jcajce.JcaContentSignerBuilder;

import javax.security.auth.x500.X500Principal;
import java.io.IOException;
import java.math.BigInteger;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.cert.X509Certificate;
import java.security.spec.ECGenParameterSpec;
import java.time.Duration;
import java.time.Instant;
import java.util.Date;
import java.util.List;

/** A fleet CA in a temporary directory, with the files an agent and a controller need. */
final class TestFleet {

    final Path dir;
    final FleetCa ca;

    TestFleet(Path dir) throws IOException {
        this.dir = dir;
        Instant now = Instant.now();
        this.ca = FleetCa.create("test fleet CA", now.minus(Duration.ofHours(1)), now.plus(Duration.ofDays(30)));
        Pem.writePublic(caCert(), Pem.encode(ca.certificate()));
    }

    Path caCert() {
        return dir.resolve("fleet-ca.crt");
    }

    /** Writes an agent server certificate for loopback use; returns [cert, key]. */
    Path[] agentCert(String name) throws IOException {
        Instant now = Instant.now();
        return write(name, ca.issueServer("kiln-agent " + name, List.of("localhost"), List.of("127.0.0.1"),
                now.minus(Duration.ofMinutes(5)), now.plus(Duration.ofDays(1))));
    }

    /** Client TLS material with a certificate valid from notBefore to notAfter. */
    ClientTls client(String name, Instant notBefore, Instant notAfter) throws IOException {
        Path[] files = write(name, ca.issueClient("kiln controller " + name, notBefore, notAfter));
        return new ClientTls(caCert(), files[0], files[1]);
    }

    /** Client TLS material valid now. */
    ClientTls client(String name) throws IOException {
        Instant now = Instant.now();
        return client(name, now.minus(Duration.ofMinutes(5)), now.plus(Duration.ofDays(1)));
    }

    /**
     * Client TLS material valid now, whose certificate the fleet CA signed with no extended key
     * usage at all: what {@link FleetCa#issueClient} writes but the clientAuth usage. BouncyCastle
     * builds it, as FleetCa does, since FleetCa issues nothing of the kind.
     */
    ClientTls clientWithoutExtendedKeyUsage(String name) throws IOException, GeneralSecurityException {
        Instant now = Instant.now();
        KeyPairGenerator generator = KeyPairGenerator.getInstance("EC");
        generator.initialize(new ECGenParameterSpec("secp256r1"));
        KeyPair keys = generator.generateKeyPair();
        X509v3CertificateBuilder builder = new JcaX509v3CertificateBuilder(ca.certificate(),
                BigInteger.valueOf(now.toEpochMilli()), Date.from(now.minus(Duration.ofMinutes(5))),
                Date.from(now.plus(Duration.ofDays(1))), new X500Principal("CN=kiln controller " + name + ",O=kiln"),
                keys.getPublic())
                .addExtension(Extension.basicConstraints, true, new BasicConstraints(false))
                .addExtension(Extension.keyUsage, true, new KeyUsage(KeyUsage.digitalSignature));
        X509Certificate certificate;
        try {
            certificate = new JcaX509CertificateConverter().getCertificate(
                    builder.build(new JcaContentSignerBuilder("SHA256withECDSA").build(ca.privateKey())));
        } catch (OperatorCreationException e) {
            throw new GeneralSecurityException(e);
        }
        Path[] files = write(name, new IssuedCertificate(certificate, keys.getPrivate()));
        return new ClientTls(caCert(), files[0], files[1]);
    }

    Path[] write(String name, IssuedCertificate issued) throws IOException {
        Path cert = dir.resolve(name + ".crt");
        Path key = dir.resolve(name + ".key");
        Pem.writePublic(cert, issued.certificatePem());
        Pem.writePrivate(key, issued.privateKeyPem());
        return new Path[]{cert, key};
    }

    /** Agent settings for local mode on a free loopback port. */
    String localAgentSettings(Path stateDir, Path[] agentCert) {
        return """
                kiln:
                  mode: local
                  state-dir: '%s'
                  grpc:
                    host: 127.0.0.1
                    port: 0
                  tls:
                    cert: '%s'
                    key: '%s'
                    ca: '%s'
                """.formatted(stateDir, agentCert[0], agentCert[1], caCert());
    }
}
