package dev.kiln.agent.serve;

import dev.kiln.testkit.Prerequisites;
import org.apache.sshd.common.config.keys.KeyUtils;
import org.apache.sshd.common.config.keys.PublicKeyEntry;
import org.apache.sshd.common.kex.BuiltinDHFactories;
import org.apache.sshd.common.signature.BuiltinSignatures;
import org.apache.sshd.common.signature.Signature;
import org.apache.sshd.common.util.security.SecurityUtils;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.Security;
import java.security.interfaces.EdECPrivateKey;
import java.security.interfaces.EdECPublicKey;
import java.util.Base64;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * MINA SSHD's ed25519 on the JDK's EdDSA: keys that OpenSSH's own {@code ssh-keygen} writes and
 * reads, signatures the JDK verifies, and no BouncyCastle JCA provider. (The servers in the other
 * {@code Ssh*Test} classes use it too: their host key and the owner's key are ed25519, checked by
 * real OpenSSH clients.)
 */
class JdkEd25519Test {

    @TempDir
    Path tmp;

    @BeforeAll
    static void mina() throws Exception {
        Class.forName(SshServer.class.getName()); // what the agent does first: installs the registrars
    }

    @Test
    void minaUsesTheJdksEd25519AndNeverCreatesBouncyCastlesProvider() {
        assertTrue(SecurityUtils.isEDDSACurveSupported());
        assertInstanceOf(JdkEd25519.class, SecurityUtils.getEdDSASupport().orElseThrow());
        assertFalse(SecurityUtils.getRegisteredProviders().contains(SecurityUtils.BOUNCY_CASTLE),
                "registered: " + SecurityUtils.getRegisteredProviders());
        assertEquals(null, Security.getProvider(SecurityUtils.BOUNCY_CASTLE));
        // The post-quantum key exchanges use BouncyCastle's lightweight classes, not its provider.
        assertTrue(BuiltinDHFactories.sntrup761x25519_openssh.isSupported());
        assertTrue(BuiltinDHFactories.mlkem768x25519.isSupported());
    }

    @Test
    void aHostKeyWeWriteIsOneOpenSshReadsAndAgreesWith() throws Exception {
        Prerequisites.requireCommand("ssh-keygen", "apt-get install openssh-client");
        Path file = tmp.resolve("ssh/ssh_host_ed25519_key");
        HostKey key = HostKey.loadOrCreate(file);
        assertInstanceOf(EdECPublicKey.class, key.keyPair().getPublic());
        assertInstanceOf(EdECPrivateKey.class, key.keyPair().getPrivate());
        assertEquals(key.publicKeyLine(), publicKeyOpenSshDerives(file),
                "ssh-keygen derives the same public key from the private key file");
        SshFixture.Run fp = SshFixture.run(List.of("ssh-keygen", "-l", "-f", file.toString()), 30);
        assertTrue(fp.out().contains(key.fingerprint()), fp + " vs " + key.fingerprint());
        // Read back: the same pair (the loader checks the stored public key against the private one).
        HostKey again = HostKey.loadOrCreate(file);
        assertArrayEquals(key.keyPair().getPublic().getEncoded(), again.keyPair().getPublic().getEncoded());
        assertArrayEquals(key.keyPair().getPrivate().getEncoded(), again.keyPair().getPrivate().getEncoded());
    }

    @Test
    void aKeyOpenSshWroteLoadsWithItsOwnPublicKey() throws Exception {
        Prerequisites.requireCommand("ssh-keygen", "apt-get install openssh-client");
        Path file = tmp.resolve("id_ed25519");
        SshFixture.Run gen = SshFixture.run(List.of("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "t", "-f",
                file.toString()), 30);
        assertEquals(0, gen.code(), gen.toString());
        HostKey key = HostKey.loadOrCreate(file);
        String pub = Files.readString(Path.of(file + ".pub"), StandardCharsets.US_ASCII).trim();
        assertEquals(pub.substring(0, pub.lastIndexOf(' ')), key.publicKeyLine());
        // A public key line parses to the JDK's key type and compares equal to the loaded one.
        var parsed = PublicKeyEntry.parsePublicKeyEntry(pub).resolvePublicKey(null, null, null);
        assertInstanceOf(EdECPublicKey.class, parsed);
        assertTrue(KeyUtils.compareKeys(parsed, key.keyPair().getPublic()));
    }

    @Test
    void hostKeysGivenAsPemOrOpenSshOfEveryTypeLoadAsOpenSshReadsThem() throws Exception {
        // kiln.ssh.host-key may name a PEM or OpenSSH key of the user's: without BouncyCastle's
        // provider, MINA's own PEM parsers read them (and this class, ed25519 ones).
        Prerequisites.requireCommand("ssh-keygen", "apt-get install openssh-client");
        Prerequisites.requireCommand("openssl", "apt-get install openssl");
        List<List<String>> makers = List.of(
                List.of("openssl", "genpkey", "-algorithm", "ed25519", "-out", "FILE"),
                List.of("ssh-keygen", "-q", "-t", "rsa", "-b", "2048", "-m", "PEM", "-N", "", "-f", "FILE"),
                List.of("ssh-keygen", "-q", "-t", "ecdsa", "-b", "256", "-m", "PEM", "-N", "", "-f", "FILE"),
                List.of("ssh-keygen", "-q", "-t", "ecdsa", "-b", "384", "-N", "", "-f", "FILE"),
                List.of("ssh-keygen", "-q", "-t", "rsa", "-b", "2048", "-N", "", "-f", "FILE"));
        int i = 0;
        for (List<String> maker : makers) {
            Path file = tmp.resolve("given" + i++);
            SshFixture.Run made = SshFixture.run(maker.stream().map(w -> w.replace("FILE", file.toString())).toList(), 60);
            assertEquals(0, made.code(), made.toString());
            Files.setPosixFilePermissions(file, java.nio.file.attribute.PosixFilePermissions.fromString("rw-------"));
            HostKey key = HostKey.loadOrCreate(file);
            if (maker.get(0).equals("openssl")) { // OpenSSH 9.2 cannot read PKCS#8 ed25519: ask openssl
                SshFixture.Run pub = SshFixture.run(List.of("openssl", "pkey", "-in", file.toString(), "-pubout"), 30);
                assertEquals(0, pub.code(), pub.toString());
                byte[] der = Base64.getMimeDecoder().decode(pub.out().replaceAll("-----[A-Z ]+-----", ""));
                assertArrayEquals(java.util.Arrays.copyOfRange(der, der.length - 32, der.length), rawPublic(key));
                continue;
            }
            assertEquals(publicKeyOpenSshDerives(file), key.publicKeyLine(), String.join(" ", maker));
        }
    }

    @Test
    void aPrivateKeyFileWhosePublicHalfWasChangedIsRefused() throws Exception {
        Path file = tmp.resolve("k");
        HostKey key = HostKey.loadOrCreate(file);
        HostKey other = HostKey.loadOrCreate(tmp.resolve("other"));
        byte[] mine = rawPublic(key);
        byte[] theirs = rawPublic(other);
        // The OpenSSH format stores the public key three times: once in the public section and
        // twice (alone, and after the seed) in the unencrypted private section. Replace them all.
        String text = Files.readString(file);
        String body = text.replaceAll("-----[A-Z ]+-----", "").replaceAll("\\s", "");
        byte[] blob = Base64.getDecoder().decode(body);
        int replaced = replaceAll(blob, mine, theirs);
        assertEquals(3, replaced);
        Files.writeString(file, "-----BEGIN OPENSSH PRIVATE KEY-----\n" + Base64.getMimeEncoder(70, "\n".getBytes())
                .encodeToString(blob) + "\n-----END OPENSSH PRIVATE KEY-----\n");
        var e = assertThrows(java.io.IOException.class, () -> HostKey.loadOrCreate(file));
        assertTrue(e.getMessage().contains("cannot read the host key"), e.getMessage());
    }

    @Test
    void signaturesVerifyBothWaysWithTheJdk() throws Exception {
        KeyPair pair = KeyPairGenerator.getInstance("Ed25519").generateKeyPair();
        byte[] data = "kiln".getBytes(StandardCharsets.UTF_8);
        Signature mina = BuiltinSignatures.ed25519.create();
        mina.initSigner(null, pair.getPrivate());
        mina.update(null, data);
        byte[] signed = mina.sign(null);
        java.security.Signature jdk = java.security.Signature.getInstance("Ed25519");
        jdk.initVerify(pair.getPublic());
        jdk.update(data);
        assertTrue(jdk.verify(signed));

        jdk.initSign(pair.getPrivate());
        jdk.update(data);
        byte[] jdkSigned = jdk.sign();
        Signature verifier = BuiltinSignatures.ed25519.create();
        verifier.initVerifier(null, pair.getPublic());
        verifier.update(null, data);
        assertTrue(verifier.verify(null, jdkSigned));
        // A changed signature is refused: the JDK returns false, or throws for a point that is not on
        // the curve; MINA's public key authentication turns either into a SignatureException.
        for (int at : new int[]{5, 40}) {
            byte[] bad = jdkSigned.clone();
            bad[at] ^= 1;
            verifier.initVerifier(null, pair.getPublic());
            verifier.update(null, data);
            boolean verified;
            try {
                verified = verifier.verify(null, bad);
            } catch (java.security.SignatureException e) {
                verified = false;
            }
            assertFalse(verified, "byte " + at + " changed");
        }
    }

    @Test
    void recoversThePublicKeyOfAnyPrivateKey() throws Exception {
        JdkEd25519 support = new JdkEd25519();
        KeyPairGenerator gen = KeyPairGenerator.getInstance("Ed25519");
        for (int i = 0; i < 20; i++) {
            KeyPair pair = gen.generateKeyPair();
            assertArrayEquals(pair.getPublic().getEncoded(), support.recoverEDDSAPublicKey(pair.getPrivate()).getEncoded());
        }
        KeyPair rsa = KeyPairGenerator.getInstance("RSA").generateKeyPair();
        assertThrows(java.security.InvalidKeyException.class, () -> support.recoverEDDSAPublicKey(rsa.getPrivate()));
    }

    @Test
    void bouncyCastlesDerivationAgreesWithTheJdksKeyPairs() throws Exception {
        JdkEd25519 support = new JdkEd25519();
        KeyPairGenerator gen = KeyPairGenerator.getInstance("Ed25519");
        for (int i = 0; i < 20; i++) {
            KeyPair pair = gen.generateKeyPair();
            byte[] seed = ((java.security.interfaces.EdECPrivateKey) pair.getPrivate()).getBytes().orElseThrow();
            assertArrayEquals(pair.getPublic().getEncoded(), support.derivedByBouncyCastle(seed).getEncoded());
        }
    }

    /** {@code ssh-keygen -y}'s public key line for a private key file, without its comment. */
    private static String publicKeyOpenSshDerives(Path file) throws Exception {
        SshFixture.Run derived = SshFixture.run(List.of("ssh-keygen", "-y", "-f", file.toString()), 30);
        assertEquals(0, derived.code(), derived.toString());
        String[] words = derived.out().trim().split(" ");
        return words[0] + " " + words[1];
    }

    private static byte[] rawPublic(HostKey key) {
        byte[] enc = key.keyPair().getPublic().getEncoded(); // X.509: a 12-byte prefix, then the 32-byte point
        return java.util.Arrays.copyOfRange(enc, enc.length - 32, enc.length);
    }

    private static int replaceAll(byte[] blob, byte[] from, byte[] to) {
        int n = 0;
        for (int i = 0; i + from.length <= blob.length; i++) {
            if (java.util.Arrays.equals(blob, i, i + from.length, from, 0, from.length)) {
                System.arraycopy(to, 0, blob, i, to.length);
                n++;
            }
        }
        return n;
    }
}
