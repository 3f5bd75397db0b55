package dev.kiln.agent.serve;

import org.apache.sshd.common.config.keys.PrivateKeyEntryDecoder;
import org.apache.sshd.common.config.keys.PublicKeyEntryDecoder;
import org.apache.sshd.common.signature.Signature;
import org.apache.sshd.common.util.buffer.Buffer;
import org.apache.sshd.common.util.security.SecurityProviderRegistrar;
import org.apache.sshd.common.util.security.SecurityUtils;
import org.apache.sshd.common.util.security.SunJCESecurityProviderRegistrar;
import org.apache.sshd.common.util.security.eddsa.generic.EdDSASupport;
import org.apache.sshd.common.util.security.eddsa.generic.EdDSAUtils;
import org.apache.sshd.common.util.security.eddsa.generic.GenericEd25519PublicKeyDecoder;
import org.apache.sshd.common.util.security.eddsa.generic.GenericOpenSSHEd25519PrivateKeyEntryDecoder;
import org.apache.sshd.common.util.security.eddsa.generic.GenericSignatureEd25519;

import java.security.GeneralSecurityException;
import java.security.InvalidKeyException;
import java.security.Key;
import java.security.KeyFactory;
import java.security.KeyPairGenerator;
import java.security.PrivateKey;
import java.security.Provider;
import java.security.PublicKey;
import java.security.SecureRandom;
import java.security.Security;
import java.security.interfaces.EdECKey;
import java.security.interfaces.EdECPrivateKey;
import java.security.interfaces.EdECPublicKey;
import java.security.spec.KeySpec;
import java.security.spec.NamedParameterSpec;
import java.security.spec.PKCS8EncodedKeySpec;
import java.security.spec.X509EncodedKeySpec;
import java.util.Arrays;
import java.util.Optional;

/**
 * ed25519 for MINA SSHD on the JDK's own EdDSA (SunEC, JDK 15 and later), not on BouncyCastle's
 * JCA provider.
 *
 * <p>MINA SSHD 2.20 offers ed25519 keys and signatures only through BouncyCastle's provider or
 * {@code net.i2p.crypto:eddsa}; registering BouncyCastle's provider loads about 500 classes at the
 * agent's start-up and makes it MINA's default provider for everything else. This class gives MINA
 * an {@link EdDSASupport} over {@link EdECPublicKey}/{@link EdECPrivateKey}, and {@link #install()}
 * sets MINA's registrars to the JDK's ciphers plus this one, so MINA never creates BouncyCastle's
 * provider. BouncyCastle's lightweight classes stay on the class path: MINA's post-quantum key
 * exchanges ({@code mlkem768x25519-sha256}, {@code sntrup761x25519-sha512}) call them directly,
 * and {@link #recoverEDDSAPublicKey} falls back on their ed25519.
 */
public final class JdkEd25519 implements EdDSASupport<EdECPublicKey, EdECPrivateKey> {

    private static final String ALGORITHM = "Ed25519";
    private static final int SEED_BYTES = 32;

    /**
     * Points MINA at the JDK's ed25519 unless {@code org.apache.sshd.security.registrars} was given
     * on the command line (then that choice stands). Call before anything touches MINA's
     * {@code SecurityUtils}; MINA reads the property once.
     *
     * @return true when this call chose the registrars
     */
    public static synchronized boolean install() {
        if (System.getProperty(SecurityUtils.SECURITY_PROVIDER_REGISTRARS) != null) {
            return false;
        }
        System.setProperty(SecurityUtils.SECURITY_PROVIDER_REGISTRARS,
                SunJCESecurityProviderRegistrar.class.getName() + "," + Registrar.class.getName());
        return true;
    }

    @Override
    public PublicKeyEntryDecoder<EdECPublicKey, EdECPrivateKey> getEDDSAPublicKeyEntryDecoder() {
        return new GenericEd25519PublicKeyDecoder<>(EdECPublicKey.class, EdECPrivateKey.class, this);
    }

    @Override
    public PrivateKeyEntryDecoder<EdECPublicKey, EdECPrivateKey> getOpenSSHEDDSAPrivateKeyEntryDecoder() {
        return new GenericOpenSSHEd25519PrivateKeyEntryDecoder<>(EdECPublicKey.class, EdECPrivateKey.class, this);
    }

    @Override
    public Signature getEDDSASigner() {
        return new GenericSignatureEd25519(ALGORITHM);
    }

    @Override
    public int getEDDSAKeySize(Key key) {
        return isEd25519(key) ? KEY_SIZE : -1;
    }

    @Override
    public Class<EdECPublicKey> getEDDSAPublicKeyType() {
        return EdECPublicKey.class;
    }

    @Override
    public Class<EdECPrivateKey> getEDDSAPrivateKeyType() {
        return EdECPrivateKey.class;
    }

    @Override
    public boolean compareEDDSAPPublicKeys(PublicKey k1, PublicKey k2) {
        return sameEd25519Key(k1, k2);
    }

    @Override
    public boolean compareEDDSAPrivateKeys(PrivateKey k1, PrivateKey k2) {
        return sameEd25519Key(k1, k2);
    }

    private static boolean sameEd25519Key(Key k1, Key k2) {
        return isEd25519(k1) && isEd25519(k2) && Arrays.equals(k1.getEncoded(), k2.getEncoded());
    }

    /**
     * The JDK has no call that derives an ed25519 public key from a private one, but its key pair
     * generator derives the public key from 32 random bytes, which are the private key (RFC 8032):
     * given exactly those bytes as its randomness, it yields this private key's pair. That is the
     * cheapest way at start-up, where MINA checks the host key's pair. A generator that asks for
     * its randomness any other way gets BouncyCastle's lightweight ed25519.
     */
    @Override
    public EdECPublicKey recoverEDDSAPublicKey(PrivateKey key) throws GeneralSecurityException {
        if (!(key instanceof EdECPrivateKey) || !isEd25519(key)) {
            throw new InvalidKeyException("not an ed25519 private key: " + (key == null ? null : key.getAlgorithm()));
        }
        byte[] seed = ((EdECPrivateKey) key).getBytes()
                .orElseThrow(() -> new InvalidKeyException("the ed25519 private key's bytes are not available"));
        try {
            if (seed.length != SEED_BYTES) {
                throw new InvalidKeyException("an ed25519 private key has " + SEED_BYTES + " bytes, not " + seed.length);
            }
            Seed random = new Seed(seed);
            try {
                KeyPairGenerator generator = KeyPairGenerator.getInstance(ALGORITHM);
                generator.initialize(NamedParameterSpec.ED25519, random);
                EdECPublicKey derived = (EdECPublicKey) generator.generateKeyPair().getPublic();
                if (random.used) {
                    return derived;
                }
            } catch (Seed.Unexpected e) {
                // the generator wanted other randomness: derive it directly
            }
            return derivedByBouncyCastle(seed);
        } finally {
            Arrays.fill(seed, (byte) 0);
        }
    }

    /** The public key of a 32-byte private key, by BouncyCastle's lightweight ed25519. */
    EdECPublicKey derivedByBouncyCastle(byte[] seed) throws GeneralSecurityException {
        byte[] point = new byte[org.bouncycastle.math.ec.rfc8032.Ed25519.PUBLIC_KEY_SIZE];
        org.bouncycastle.math.ec.rfc8032.Ed25519.generatePublicKey(seed, 0, point, 0);
        return generateEDDSAPublicKey(point);
    }

    @Override
    public EdECPublicKey generateEDDSAPublicKey(byte[] point) throws GeneralSecurityException {
        return (EdECPublicKey) KeyFactory.getInstance(ALGORITHM).generatePublic(EdDSAUtils.createPublicKeySpec(point));
    }

    @Override
    public EdECPrivateKey generateEDDSAPrivateKey(byte[] seed) throws GeneralSecurityException {
        return (EdECPrivateKey) KeyFactory.getInstance(ALGORITHM).generatePrivate(EdDSAUtils.createPrivateKeySpec(seed));
    }

    @Override
    public <B extends Buffer> B putRawEDDSAPublicKey(B buffer, PublicKey key) {
        try {
            buffer.putBytes(EdDSAUtils.getBytes(key));
        } catch (InvalidKeyException e) {
            throw new IllegalArgumentException("not an ed25519 public key: " + e.getMessage(), e);
        }
        return buffer;
    }

    /** Only an SSH agent's key store writes key pairs into a buffer; Kiln runs no SSH agent. */
    @Override
    public <B extends Buffer> B putEDDSAKeyPair(B buffer, PublicKey pubKey, PrivateKey prvKey) {
        throw new UnsupportedOperationException("writing an ed25519 key pair into an SSH buffer is not supported");
    }

    @Override
    public KeySpec createPublicKeySpec(EdECPublicKey publicKey) {
        return new X509EncodedKeySpec(publicKey.getEncoded());
    }

    @Override
    public KeySpec createPrivateKeySpec(EdECPrivateKey privateKey) {
        return new PKCS8EncodedKeySpec(privateKey.getEncoded());
    }

    @Override
    public byte[] getPublicKeyData(EdECPublicKey publicKey) {
        try {
            return publicKey == null ? null : EdDSAUtils.getBytes(publicKey);
        } catch (InvalidKeyException e) {
            throw new IllegalArgumentException("not an ed25519 public key: " + e.getMessage(), e);
        }
    }

    @Override
    public byte[] getPrivateKeyData(EdECPrivateKey privateKey) {
        return privateKey.getBytes()
                .orElseThrow(() -> new IllegalArgumentException("the ed25519 private key's bytes are not available"));
    }

    @Override
    public String getKeyFactoryAlgorithm() {
        return ALGORITHM;
    }

    private static boolean isEd25519(Key key) {
        return key instanceof EdECKey
                && NamedParameterSpec.ED25519.getName().equalsIgnoreCase(((EdECKey) key).getParams().getName());
    }

    /** Randomness that is exactly one private key's bytes, once. */
    private static final class Seed extends SecureRandom {
        private static final long serialVersionUID = 1L;
        private final byte[] bytes;
        boolean used;

        /** The generator asked for other than one private key's bytes. */
        static final class Unexpected extends IllegalStateException {
            private static final long serialVersionUID = 1L;

            Unexpected(String message) {
                super(message);
            }
        }

        Seed(byte[] bytes) {
            super(new byte[0]);
            this.bytes = bytes;
        }

        @Override
        public synchronized void nextBytes(byte[] out) {
            if (used || out.length != bytes.length) {
                throw new Unexpected("the ed25519 key pair generator asked for " + out.length
                        + " bytes; it was given one private key of " + bytes.length);
            }
            System.arraycopy(bytes, 0, out, 0, bytes.length);
            used = true;
        }
    }

    /**
     * MINA's registrar for {@link JdkEd25519}: ed25519 support and nothing else; it claims no
     * ciphers, digests or signatures, so MINA takes those from the JDK's providers (its SunJCE
     * registrar for ciphers and MACs, the JDK's defaults for the rest).
     */
    public static final class Registrar implements SecurityProviderRegistrar {
        private final JdkEd25519 support = new JdkEd25519();

        @Override
        public String getName() {
            return "JdkEd25519";
        }

        @Override
        public boolean isSupported() {
            try {
                KeyFactory.getInstance(ALGORITHM);
                return true;
            } catch (GeneralSecurityException e) {
                return false;
            }
        }

        @Override
        public boolean isNamedProviderUsed() {
            return false;
        }

        @Override
        public Provider getSecurityProvider() {
            return Security.getProvider("SunEC");
        }

        @Override
        public String getDefaultSecurityEntitySupportValue(Class<?> entityType) {
            return "";
        }

        @Override
        public Optional<EdDSASupport<?, ?>> getEdDSASupport() {
            return Optional.of(support);
        }
    }
}
