package dev.kiln.controller.ssh;

import org.bouncycastle.crypto.params.Ed25519PrivateKeyParameters;
import org.bouncycastle.crypto.params.Ed25519PublicKeyParameters;

import java.io.ByteArrayOutputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.security.SecureRandom;
import java.util.Base64;

/**
 * An ed25519 SSH key pair in OpenSSH's own formats: the private key as
 * {@code openssh-key-v1} (unencrypted, as {@code ssh-keygen -N ''} writes it) and the public key
 * as an {@code authorized_keys} line.
 */
public final class SshKeyPair {

    private static final String TYPE = "ssh-ed25519";

    private final byte[] seed;
    private final byte[] publicKey;
    private final String comment;

    private SshKeyPair(byte[] seed, byte[] publicKey, String comment) {
        this.seed = seed;
        this.publicKey = publicKey;
        this.comment = comment;
    }

    /** A fresh key pair. */
    public static SshKeyPair generate(String comment) {
        SecureRandom random = new SecureRandom();
        Ed25519PrivateKeyParameters priv = new Ed25519PrivateKeyParameters(random);
        Ed25519PublicKeyParameters pub = priv.generatePublicKey();
        return new SshKeyPair(priv.getEncoded(), pub.getEncoded(), comment);
    }

    /** The {@code authorized_keys} line: {@code ssh-ed25519 AAAA... comment}. */
    public String publicKeyLine() {
        return TYPE + " " + Base64.getEncoder().encodeToString(publicBlob()) + " " + comment + "\n";
    }

    /** The private key file's text ({@code -----BEGIN OPENSSH PRIVATE KEY-----}). */
    public String privateKeyPem() {
        try {
            ByteArrayOutputStream privSection = new ByteArrayOutputStream();
            DataOutputStream p = new DataOutputStream(privSection);
            int check = new SecureRandom().nextInt();
            p.writeInt(check);
            p.writeInt(check);
            writeString(p, TYPE.getBytes(StandardCharsets.US_ASCII));
            writeString(p, publicKey);
            byte[] secret = new byte[64]; // OpenSSH stores seed || public key
            System.arraycopy(seed, 0, secret, 0, 32);
            System.arraycopy(publicKey, 0, secret, 32, 32);
            writeString(p, secret);
            writeString(p, comment.getBytes(StandardCharsets.UTF_8));
            for (int pad = 1; privSection.size() % 8 != 0; pad++) {
                p.writeByte(pad);
            }

            ByteArrayOutputStream all = new ByteArrayOutputStream();
            DataOutputStream d = new DataOutputStream(all);
            d.write("openssh-key-v1\0".getBytes(StandardCharsets.US_ASCII));
            writeString(d, "none".getBytes(StandardCharsets.US_ASCII)); // cipher
            writeString(d, "none".getBytes(StandardCharsets.US_ASCII)); // kdf
            writeString(d, new byte[0]);                                // kdf options
            d.writeInt(1);                                              // number of keys
            writeString(d, publicBlob());
            writeString(d, privSection.toByteArray());

            String b64 = Base64.getEncoder().encodeToString(all.toByteArray());
            StringBuilder out = new StringBuilder("-----BEGIN OPENSSH PRIVATE KEY-----\n");
            for (int i = 0; i < b64.length(); i += 70) {
                out.append(b64, i, Math.min(b64.length(), i + 70)).append('\n');
            }
            return out.append("-----END OPENSSH PRIVATE KEY-----\n").toString();
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }

    private byte[] publicBlob() {
        try {
            ByteArrayOutputStream b = new ByteArrayOutputStream();
            DataOutputStream d = new DataOutputStream(b);
            writeString(d, TYPE.getBytes(StandardCharsets.US_ASCII));
            writeString(d, publicKey);
            return b.toByteArray();
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }

    private static void writeString(DataOutputStream d, byte[] bytes) throws IOException {
        d.writeInt(bytes.length);
        d.write(bytes);
    }
}
