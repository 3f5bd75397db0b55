package dev.kiln.controller.cli;

import dev.kiln.controller.fleet.AgentUserData;
import dev.kiln.controller.pki.FleetCa;
import dev.kiln.controller.pki.IssuedCertificate;
import dev.kiln.controller.pki.Pem;
import dev.kiln.tls.BootstrapCertificate;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.time.Instant;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** What `kiln launch` puts into user data: a bootstrap certificate valid for minutes, never the instance's lifetime. */
class LaunchBootstrapCertificateTest {

    private static final FleetCa CA = FleetCa.create("test CA", Instant.now().minus(Duration.ofHours(1)),
            Instant.now().plus(Duration.ofDays(30)));

    @Test
    void userDataCarriesABootstrapCertificateThatExpiresMinutesAfterTheLaunchsWait() {
        Instant before = Instant.now();
        IssuedCertificate cert = LaunchCommand.bootstrapCertificate(CA, "agent-0a1b2c.kiln.internal", Duration.ofMinutes(10));
        assertTrue(BootstrapCertificate.is(cert.certificate()), cert.certificate().getSubjectX500Principal().getName());
        Instant notAfter = cert.certificate().getNotAfter().toInstant();
        assertTrue(!notAfter.isBefore(before.plus(Duration.ofMinutes(15)).minusSeconds(1))
                && !notAfter.isAfter(Instant.now().plus(Duration.ofMinutes(15))), notAfter.toString());

        String yaml = AgentUserData.yaml(cert, CA, 7443, Duration.ofHours(2), Duration.ofHours(12));
        assertTrue(yaml.replaceAll("\\s", "").contains(Pem.encode(cert.certificate()).replaceAll("\\s", "")), yaml);
        assertEquals(1, yaml.split("BEGIN PRIVATE KEY", -1).length - 1, "one key, the bootstrap certificate's");
    }

    @Test
    void anEnrolledCertificateCarriesNoBootstrapMark() {
        IssuedCertificate boot = LaunchCommand.bootstrapCertificate(CA, "agent-x.kiln.internal", Duration.ofMinutes(1));
        var enrolled = CA.issueServerFor(boot.certificate().getPublicKey(), "kiln-agent i-1", List.of("agent-x.kiln.internal"),
                List.of(), Instant.now(), Instant.now().plus(Duration.ofHours(1)));
        assertFalse(BootstrapCertificate.is(enrolled));
        assertFalse(BootstrapCertificate.is(CA.issueServer("kiln-agent local", List.of("localhost"), List.of(),
                Instant.now(), Instant.now().plus(Duration.ofHours(1))).certificate()));
    }
}
