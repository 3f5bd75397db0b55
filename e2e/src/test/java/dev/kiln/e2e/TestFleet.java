package dev.kiln.e2e;

import dev.kiln.controller.client.ClientTls;
import dev.kiln.controller.pki.FleetCa;
import dev.kiln.controller.pki.IssuedCertificate;
import dev.kiln.controller.pki.Pem;

import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
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
