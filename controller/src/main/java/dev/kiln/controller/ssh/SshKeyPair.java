package dev.kiln.controller.ssh;

import org.bouncycastle.crypto.AsymmetricCipherKeyPair;
import org.bouncycastle.crypto.generators.Ed25519KeyPairGenerator;
import org.bouncycastle.crypto.params.Ed25519KeyGenerationParameters;
import org.bouncycastle.crypto.util.OpenSSHPrivateKeyUtil;
import org.bouncycastle.crypto.util.OpenSSHPublicKeyUtil;
import org.bouncycastle.util.io.pem.PemObject;
import org.bouncycastle.util.io.pem.PemWriter;

import java.io.IOException;
import java.io.StringWriter;
import java.io.UncheckedIOException;
import java.security.SecureRandom;
import java.util.Base64;

/**
 * An ed25519 SSH key pair in OpenSSH's own formats, made and encoded by BouncyCastle: the private
 * key as {@code openssh-key-v1} (unencrypted, as {@code ssh-keygen -N ''} writes it) and the
 * public key as an {@code authorized_keys} line.
 */
public final class SshKeyPair {

    private static final String TYPE = "ssh-ed25519";

    private final AsymmetricCipherKeyPair pair;
    private final String comment;

    private SshKeyPair(AsymmetricCipherKeyPair pair, String comment) {
        this.pair = pair;
        this.comment = comment;
    }

    /** A fresh key pair. */
    public static SshKeyPair generate(String comment) {
        Ed25519KeyPairGenerator generator = new Ed25519KeyPairGenerator();
        generator.init(new Ed25519KeyGenerationParameters(new SecureRandom()));
        return new SshKeyPair(generator.generateKeyPair(), comment);
    }

    /** The {@code authorized_keys} line: {@code ssh-ed25519 AAAA... comment}. */
    public String publicKeyLine() {
        try {
            byte[] blob = OpenSSHPublicKeyUtil.encodePublicKey(pair.getPublic());
            return TYPE + " " + Base64.getEncoder().encodeToString(blob) + " " + comment + "\n";
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** The private key file's text ({@code -----BEGIN OPENSSH PRIVATE KEY-----}). */
    public String privateKeyPem() {
        StringWriter text = new StringWriter();
        try (PemWriter pem = new PemWriter(text)) {
            pem.writeObject(new PemObject("OPENSSH PRIVATE KEY", OpenSSHPrivateKeyUtil.encodePrivateKey(pair.getPrivate())));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return text.toString();
    }
}
