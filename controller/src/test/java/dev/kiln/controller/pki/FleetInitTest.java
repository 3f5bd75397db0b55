package dev.kiln.controller.pki;

import dev.kiln.controller.ExitCodes;
import dev.kiln.controller.KilnException;
import dev.kiln.controller.config.CliEnvironment;
import dev.kiln.controller.config.KilnPaths;
import dev.kiln.testkit.Prerequisites;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.cert.X509Certificate;
import java.time.Clock;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class FleetInitTest {

    @TempDir
    Path home;

    KilnPaths paths(Map<String, String> env) {
        return KilnPaths.from(new CliEnvironment(env, home, System.out, System.err));
    }

    @Test
    void respectsXdgConfigHomeAndDefaultsToDotConfig() {
        assertEquals(home.resolve("x/kiln"), paths(Map.of("XDG_CONFIG_HOME", home.resolve("x").toString())).configDir());
        assertEquals(home.resolve(".config/kiln"), paths(Map.of()).configDir());
        assertEquals(home.resolve(".local/state/kiln"), paths(Map.of()).stateDir());
    }

    @Test
    void writesPrivateKeysOwnerOnlyAndTheDirectory0700() throws Exception {
        KilnPaths p = paths(Map.of());
        new FleetInit(p, Clock.systemUTC()).run(false, "alice@laptop");
        for (Path key : List.of(p.caKey(), p.clientKey(), p.sshKey())) {
            assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(key)), key.toString());
        }
        assertEquals("rwx------", PosixFilePermissions.toString(Files.getPosixFilePermissions(p.configDir())));
    }

    @Test
    void theControllerCertificateChainsToTheCaAndIsForClientsOnly() throws Exception {
        KilnPaths p = paths(Map.of());
        new FleetInit(p, Clock.systemUTC()).run(false, "alice@laptop");
        X509Certificate ca = Pem.readCertificate(p.caCert());
        X509Certificate client = Pem.readCertificate(p.clientCert());
        client.verify(ca.getPublicKey());
        client.checkValidity();
        assertEquals(List.of("1.3.6.1.5.5.7.3.2"), client.getExtendedKeyUsage()); // clientAuth
        assertTrue(ca.getBasicConstraints() >= 0, "the CA certificate is a CA");
        // The key on disk is the certificate's key: sign with one, verify with the other.
        var sig = java.security.Signature.getInstance("SHA256withECDSA");
        sig.initSign(Pem.readPrivateKey(p.clientKey()));
        sig.update(new byte[]{1, 2, 3});
        byte[] s = sig.sign();
        sig.initVerify(client.getPublicKey());
        sig.update(new byte[]{1, 2, 3});
        assertTrue(sig.verify(s));
    }

    @Test
    void refusesToReplaceAnExistingCaAndChangesNothing() throws Exception {
        KilnPaths p = paths(Map.of());
        FleetInit init = new FleetInit(p, Clock.systemUTC());
        init.run(false, "alice@laptop");
        byte[] caBefore = Files.readAllBytes(p.caKey());
        byte[] clientBefore = Files.readAllBytes(p.clientCert());
        KilnException e = assertThrows(KilnException.class, () -> init.run(false, "alice@laptop"));
        assertEquals(ExitCodes.EXISTS, e.exitCode());
        assertTrue(e.getMessage().contains("Re-run with --force"), e.getMessage());
        assertArrayEquals(caBefore, Files.readAllBytes(p.caKey()));
        assertArrayEquals(clientBefore, Files.readAllBytes(p.clientCert()));
    }

    @Test
    void forceReplacesTheCa() throws Exception {
        KilnPaths p = paths(Map.of());
        FleetInit init = new FleetInit(p, Clock.systemUTC());
        init.run(false, "alice@laptop");
        byte[] before = Files.readAllBytes(p.caCert());
        List<FleetInit.Entry> entries = init.run(true, "alice@laptop");
        assertTrue(entries.stream().anyMatch(en -> en.path().equals(p.caCert()) && en.action().equals("replaced")));
        assertTrue(!java.util.Arrays.equals(before, Files.readAllBytes(p.caCert())), "a new CA was written");
    }

    @Test
    void theSshKeyIsAValidOpenSshEd25519Key() throws Exception {
        Path sshKeygen = Prerequisites.requireCommand("ssh-keygen", "apt-get install openssh-client");
        KilnPaths p = paths(Map.of());
        new FleetInit(p, Clock.systemUTC()).run(false, "alice@laptop");
        // OpenSSH itself derives the public key from our private key file: it must match ours.
        Process proc = new ProcessBuilder(sshKeygen.toString(), "-y", "-f", p.sshKey().toString())
                .redirectErrorStream(true).start();
        assertTrue(proc.waitFor(30, TimeUnit.SECONDS));
        String derived = new String(proc.getInputStream().readAllBytes(), StandardCharsets.UTF_8).trim();
        assertEquals(0, proc.exitValue(), derived);
        String written = Files.readString(p.sshPublicKey()).trim();
        String[] w = written.split(" ");
        String[] d = derived.split(" ");
        assertEquals(w[0] + " " + w[1], d[0] + " " + d[1]);
        assertEquals("kiln alice@laptop", written.substring(w[0].length() + w[1].length() + 2));
        assertTrue(written.startsWith("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5"), written);
    }
}
