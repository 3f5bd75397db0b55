package dev.kiln.controller.client;

import dev.kiln.controller.ExitCodes;
import dev.kiln.controller.KilnException;
import dev.kiln.controller.config.CliEnvironment;
import dev.kiln.controller.config.KilnPaths;
import dev.kiln.controller.pki.FleetInit;
import dev.kiln.controller.pki.Pem;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.security.PrivateKey;
import java.security.cert.X509Certificate;
import java.time.Clock;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The controller's TLS material, read with the JDK alone, matches what BouncyCastle reads. */
class ClientTlsTest {

    @TempDir
    Path home;

    KilnPaths initialised() {
        KilnPaths p = KilnPaths.from(new CliEnvironment(Map.of(), home, System.out, System.err));
        new FleetInit(p, Clock.systemUTC()).run(false, "alice@laptop");
        return p;
    }

    @Test
    void readsKilnInitsKeyAndCertificatesAsBouncyCastleDoes() throws Exception {
        KilnPaths p = initialised();
        PrivateKey key = ClientTls.privateKey(p.clientKey());
        assertEquals("EC", key.getAlgorithm());
        assertArrayEquals(Pem.readPrivateKey(p.clientKey()).getEncoded(), key.getEncoded());
        X509Certificate[] chain = ClientTls.certificates(p.clientCert());
        assertEquals(Pem.readCertificate(p.clientCert()), chain[0]);
        assertEquals(Pem.readCertificate(p.caCert()), ClientTls.certificates(p.caCert())[0]);
        assertTrue(ClientTls.of(p).sslContext().isClient());
    }

    @Test
    void brokenMaterialIsAConfigurationErrorNamingTheFiles() throws Exception {
        KilnPaths p = initialised();
        Files.writeString(p.clientCert(), "not a certificate\n");
        KilnException e = assertThrows(KilnException.class, () -> ClientTls.of(p).sslContext());
        assertEquals(ExitCodes.CONFIG, e.exitCode());
        assertTrue(e.getMessage().contains(p.clientCert().toString()), e.getMessage());
        assertTrue(e.getMessage().startsWith("cannot use the controller's TLS material"), e.getMessage());
    }

    @Test
    void usesOpenSslWhereItLoadsAndTheJdksWhenAsked() throws Exception {
        KilnPaths p = initialised();
        dev.kiln.testkit.Prerequisites.require("BoringSSL from netty-tcnative (Kiln's gRPC TLS; failed here with: "
                + io.netty.handler.ssl.OpenSsl.unavailabilityCause() + ")", io.netty.handler.ssl.OpenSsl.isAvailable(),
                "run on Linux (glibc) or macOS, on x86-64 or ARM, with a temporary directory that allows executables");
        assertTrue(ClientTls.of(p).sslContext() instanceof io.netty.handler.ssl.OpenSslContext);
        String before = System.getProperty("kiln.tls.provider");
        try {
            System.setProperty("kiln.tls.provider", "jdk");
            assertTrue(ClientTls.of(p).sslContext() instanceof io.netty.handler.ssl.JdkSslContext);
            System.setProperty("kiln.tls.provider", "boringssl");
            KilnException e = assertThrows(KilnException.class, () -> ClientTls.of(p).sslContext());
            assertEquals(ExitCodes.CONFIG, e.exitCode());
            assertEquals("-Dkiln.tls.provider=boringssl is not a TLS provider; use openssl (the default) or jdk "
                    + "(set in KILN_JAVA_OPTS)", e.getMessage());
        } finally {
            if (before == null) {
                System.clearProperty("kiln.tls.provider");
            } else {
                System.setProperty("kiln.tls.provider", before);
            }
        }
    }
}
