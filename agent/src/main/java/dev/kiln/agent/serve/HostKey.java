package dev.kiln.agent.serve;

import org.apache.sshd.common.NamedResource;
import org.apache.sshd.common.config.keys.FilePasswordProvider;
import org.apache.sshd.common.config.keys.KeyUtils;
import org.apache.sshd.common.config.keys.PublicKeyEntry;
import org.apache.sshd.common.config.keys.writer.openssh.OpenSSHKeyPairResourceWriter;
import org.apache.sshd.common.digest.BuiltinDigests;
import org.apache.sshd.common.util.security.SecurityUtils;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.GeneralSecurityException;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.util.Iterator;

/**
 * The SSH server's host key: ed25519, generated once and kept in OpenSSH's own private key format
 * (as {@code ssh-keygen} writes it; never Java serialisation), with the public key beside it in
 * {@code <file>.pub}. Its SHA-256 fingerprint and public key line are reported over gRPC so the CLI
 * can write {@code known_hosts}.
 */
public final class HostKey {

    static {
        JdkEd25519.install(); // before MINA's SecurityUtils reads its registrars
    }

    private final KeyPair keyPair;

    private HostKey(KeyPair keyPair) {
        this.keyPair = keyPair;
    }

    /**
     * Loads the key from {@code file}, or generates and writes it (0600, directory 0700) when the
     * file does not exist.
     *
     * @throws IOException when the file exists but cannot be read as an OpenSSH/PEM private key
     */
    public static HostKey loadOrCreate(Path file) throws IOException {
        if (Files.exists(file)) {
            return new HostKey(load(file));
        }
        KeyPair kp;
        try {
            kp = KeyPairGenerator.getInstance("Ed25519").generateKeyPair(); // the JDK's (JdkEd25519)
        } catch (GeneralSecurityException e) {
            throw new IOException("cannot generate an ed25519 host key: " + e.getMessage(), e);
        }
        Path dir = file.toAbsolutePath().getParent();
        if (!Files.isDirectory(dir)) {
            Files.createDirectories(dir);
            Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwx------"));
        }
        ByteArrayOutputStream priv = new ByteArrayOutputStream();
        try {
            OpenSSHKeyPairResourceWriter.INSTANCE.writePrivateKey(kp, "kiln-agent host key", null, priv);
        } catch (GeneralSecurityException e) {
            throw new IOException("cannot encode the host key: " + e.getMessage(), e);
        }
        HostKey key = new HostKey(kp);
        Path tmp = dir.resolve(file.getFileName() + ".tmp");
        Files.deleteIfExists(tmp);
        Files.createFile(tmp, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")));
        Files.write(tmp, priv.toByteArray());
        try {
            Files.move(tmp, file, StandardCopyOption.ATOMIC_MOVE);
        } catch (AtomicMoveNotSupportedException e) {
            Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING);
        }
        Files.writeString(file.resolveSibling(file.getFileName() + ".pub"), key.publicKeyLine() + " kiln-agent\n",
                StandardCharsets.US_ASCII);
        return key;
    }

    private static KeyPair load(Path file) throws IOException {
        try (InputStream in = Files.newInputStream(file)) {
            Iterable<KeyPair> pairs = SecurityUtils.loadKeyPairIdentities(null, NamedResource.ofName(file.toString()),
                    in, FilePasswordProvider.EMPTY);
            Iterator<KeyPair> it = pairs == null ? null : pairs.iterator();
            if (it == null || !it.hasNext()) {
                throw new IOException("no private key found in " + file);
            }
            return it.next();
        } catch (GeneralSecurityException | RuntimeException e) {
            throw new IOException("cannot read the host key " + file + " (OpenSSH or PEM private key expected): "
                    + e.getMessage(), e);
        }
    }

    public KeyPair keyPair() {
        return keyPair;
    }

    /** {@code SHA256:...}, as {@code ssh-keygen -lf} prints it. */
    public String fingerprint() {
        return KeyUtils.getFingerPrint(BuiltinDigests.sha256, keyPair.getPublic());
    }

    /** The public key in OpenSSH's one-line form without a comment: {@code ssh-ed25519 AAAA...}. */
    public String publicKeyLine() {
        return PublicKeyEntry.toString(keyPair.getPublic());
    }
}
