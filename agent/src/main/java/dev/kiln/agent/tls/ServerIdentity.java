package dev.kiln.agent.tls;

import dev.kiln.agent.config.AgentSettings;
import dev.kiln.agent.config.TlsSettings;
import dev.kiln.agent.status.AgentInfo;
import dev.kiln.tls.BootstrapCertificate;
import dev.kiln.tls.PemMaterial;
import jakarta.inject.Singleton;
import org.bouncycastle.asn1.x500.X500NameBuilder;
import org.bouncycastle.asn1.x500.style.BCStyle;
import org.bouncycastle.operator.OperatorCreationException;
import org.bouncycastle.operator.jcajce.JcaContentSignerBuilder;
import org.bouncycastle.pkcs.jcajce.JcaPKCS10CertificationRequestBuilder;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import javax.net.ssl.SSLEngine;
import javax.net.ssl.X509ExtendedKeyManager;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.GeneralSecurityException;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.MessageDigest;
import java.security.Principal;
import java.security.PrivateKey;
import java.security.PublicKey;
import java.security.SecureRandom;
import java.security.cert.X509Certificate;
import java.security.spec.ECGenParameterSpec;
import java.util.Base64;
import java.util.Date;
import java.util.HexFormat;
import java.util.Optional;

/**
 * The key and certificate the gRPC server presents, and their enrollment.
 *
 * <p>Three cases, decided at start-up:
 * <ul>
 *   <li><b>enrolled</b>: {@code <state-dir>/tls/agent.key} and {@code agent.crt} hold a key this
 *       agent generated and a certificate the fleet CA issued for it, valid now. The agent serves
 *       them and ignores the bootstrap material in its settings: it never goes back to it.</li>
 *   <li><b>bootstrap</b>: {@code kiln.tls.cert} is a bootstrap certificate
 *       ({@link BootstrapCertificate}). The agent generates its own EC P-256 key (once; it stays in
 *       the state directory, 0600, and never leaves the instance), serves the bootstrap material
 *       until the controller enrolls it ({@link #certificateRequest()}, {@link #install(String)}),
 *       then serves the enrolled certificate on every new connection, without a restart.</li>
 *   <li><b>static</b>: any other certificate (the local provider's, written to a 0600 file on the
 *       controller's own machine): served as before, by {@link MutualTls}.</li>
 * </ul>
 */
@Singleton
public final class ServerIdentity {

    private static final Logger LOG = LoggerFactory.getLogger(ServerIdentity.class);
    private static final SecureRandom RANDOM = new SecureRandom();

    /** How the agent's certificate came to be. */
    public enum Mode { ENROLLED, BOOTSTRAP, STATIC }

    private final Path dir;
    private final String instanceId;
    private final X509Certificate[] fleetCa;
    private final SwappableKeyManager keyManager = new SwappableKeyManager();
    private volatile Mode mode;
    private KeyPair own;

    public ServerIdentity(AgentSettings settings, TlsSettings tls, AgentInfo info) {
        this(settings.stateDir().resolve("tls"), tls, info.identity().instanceId());
    }

    ServerIdentity(Path dir, TlsSettings tls, String instanceId) {
        this.dir = dir;
        this.instanceId = instanceId;
        try {
            this.fleetCa = PemMaterial.certificates(MutualTls.material("kiln.tls.ca", tls.ca()), "kiln.tls.ca");
            Optional<X509Certificate> enrolled = loadEnrolled();
            if (enrolled.isPresent()) {
                mode = Mode.ENROLLED;
                keyManager.use(own.getPrivate(), new X509Certificate[] {enrolled.get()});
                LOG.info("gRPC server certificate: enrolled, {}", describe(enrolled.get()));
                return;
            }
            X509Certificate[] configured = PemMaterial.certificates(MutualTls.material("kiln.tls.cert", tls.cert()),
                    "kiln.tls.cert");
            if (!BootstrapCertificate.is(configured[0])) {
                mode = Mode.STATIC;
                return;
            }
            own = loadOrCreateKey();
            PrivateKey bootstrapKey = PemMaterial.pkcs8Key(MutualTls.material("kiln.tls.key", tls.key()), "kiln.tls.key")
                    .orElseThrow(() -> new IllegalArgumentException("kiln.tls.key: a bootstrap key must be PKCS#8 PEM"));
            keyManager.use(bootstrapKey, configured);
            mode = Mode.BOOTSTRAP;
            LOG.info("gRPC server certificate: bootstrap, {}, until the controller enrolls this agent's own key",
                    describe(configured[0]));
        } catch (IOException e) {
            throw new UncheckedIOException("cannot use the agent's TLS state in " + dir + ": " + e.getMessage(), e);
        } catch (GeneralSecurityException e) {
            throw new IllegalArgumentException("the TLS material cannot be used: " + e.getMessage(), e);
        }
    }

    public Mode mode() {
        return mode;
    }

    /** The key manager the gRPC server asks at each handshake (not for {@link Mode#STATIC}). */
    public X509ExtendedKeyManager keyManager() {
        return keyManager;
    }

    /** The fleet CA: what client certificates and the enrolled certificate must chain to. */
    public X509Certificate[] fleetCa() {
        return fleetCa.clone();
    }

    /**
     * A PKCS#10 request for this agent's own key, subject {@code O=kiln, CN=kiln-agent <instance id>},
     * signed by that key (which proves its possession). It holds no private key.
     *
     * @throws IllegalStateException when the agent is not waiting for enrollment
     */
    public synchronized String certificateRequest() {
        if (mode != Mode.BOOTSTRAP) {
            throw new IllegalStateException("this agent serves " + (mode == Mode.ENROLLED ? "an enrolled" : "a static")
                    + " certificate; it enrolls only once, from its bootstrap certificate");
        }
        try {
            var subject = new X500NameBuilder(BCStyle.INSTANCE).addRDN(BCStyle.O, "kiln")
                    .addRDN(BCStyle.CN, "kiln-agent " + instanceId).build();
            byte[] der = new JcaPKCS10CertificationRequestBuilder(subject, own.getPublic())
                    .build(new JcaContentSignerBuilder("SHA256withECDSA").build(own.getPrivate())).getEncoded();
            return pem("CERTIFICATE REQUEST", der);
        } catch (OperatorCreationException | IOException e) {
            throw new IllegalStateException("cannot write a certificate request: " + e.getMessage(), e);
        }
    }

    public String instanceId() {
        return instanceId;
    }

    /**
     * Checks and installs the certificate the controller issued for this agent's key: it must be
     * signed by the fleet CA, valid now, for this key, and not a bootstrap certificate. It is
     * written to the state directory first, so a restart serves it too; new connections get it
     * at once, and the bootstrap key is forgotten.
     *
     * @return the certificate's SHA-256 fingerprint, hex
     * @throws IllegalArgumentException naming what is wrong with it
     */
    public synchronized String install(String certificatePem) {
        try {
            X509Certificate cert = PemMaterial.certificates(certificatePem.getBytes(StandardCharsets.US_ASCII), "the certificate")[0];
            if (mode == Mode.ENROLLED && cert.equals(keyManager.chain()[0])) {
                return fingerprint(cert); // a repeat of the same install
            }
            if (mode != Mode.BOOTSTRAP) {
                throw new IllegalArgumentException("this agent is not waiting for enrollment");
            }
            String problem = problem(cert, own.getPublic());
            if (problem != null) {
                throw new IllegalArgumentException("refused certificate " + cert.getSubjectX500Principal() + ": " + problem);
            }
            Path tmp = dir.resolve("agent.crt.tmp");
            Files.writeString(tmp, pem("CERTIFICATE", cert.getEncoded()), StandardCharsets.US_ASCII);
            Files.move(tmp, dir.resolve("agent.crt"), StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            keyManager.use(own.getPrivate(), new X509Certificate[] {cert});
            mode = Mode.ENROLLED;
            LOG.info("gRPC server certificate: enrolled, {}; the bootstrap certificate is no longer served", describe(cert));
            return fingerprint(cert);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot keep the enrolled certificate in " + dir + ": " + e.getMessage(), e);
        } catch (GeneralSecurityException e) {
            throw new IllegalArgumentException("not a usable PEM certificate: " + e.getMessage(), e);
        }
    }

    /** Why {@code cert} cannot be this agent's enrolled certificate for {@code key}, or null. */
    private String problem(X509Certificate cert, PublicKey key) {
        if (BootstrapCertificate.is(cert)) {
            return "it is a bootstrap certificate";
        }
        if (!cert.getPublicKey().equals(key)) {
            return "it is not for this agent's key";
        }
        boolean signed = false;
        for (X509Certificate ca : fleetCa) {
            try {
                cert.verify(ca.getPublicKey());
                signed = true;
            } catch (GeneralSecurityException e) {
                // another CA certificate may have signed it
            }
        }
        if (!signed) {
            return "the fleet CA did not issue it";
        }
        try {
            cert.checkValidity(new Date());
        } catch (GeneralSecurityException e) {
            return "it is not valid now (" + cert.getNotBefore().toInstant() + " to " + cert.getNotAfter().toInstant() + ")";
        }
        return null;
    }

    private Optional<X509Certificate> loadEnrolled() throws IOException, GeneralSecurityException {
        Path certFile = dir.resolve("agent.crt");
        if (!Files.exists(certFile) || !Files.exists(dir.resolve("agent.key"))) {
            return Optional.empty();
        }
        own = loadOrCreateKey();
        X509Certificate cert = PemMaterial.certificates(Files.readAllBytes(certFile), certFile.toString())[0];
        String problem = problem(cert, own.getPublic());
        if (problem != null) {
            LOG.warn("not serving the enrolled certificate in {}: {}", certFile, problem);
            return Optional.empty();
        }
        return Optional.of(cert);
    }

    /** This agent's own key pair: read from {@code agent.key}, or generated and written there (0600). */
    private KeyPair loadOrCreateKey() throws IOException, GeneralSecurityException {
        if (own != null) {
            return own;
        }
        Path keyFile = dir.resolve("agent.key");
        Path pubFile = dir.resolve("agent.pub");
        if (Files.exists(keyFile) && Files.exists(pubFile)) {
            PrivateKey key = PemMaterial.pkcs8Key(Files.readAllBytes(keyFile), keyFile.toString())
                    .orElseThrow(() -> new GeneralSecurityException(keyFile + " holds no PKCS#8 key"));
            PublicKey pub = java.security.KeyFactory.getInstance("EC").generatePublic(
                    new java.security.spec.X509EncodedKeySpec(Base64.getMimeDecoder().decode(strip(Files.readString(pubFile)))));
            return new KeyPair(pub, key);
        }
        // The mode goes on this directory only: createDirectories would give it to a missing state
        // directory too, which the build user must pass through.
        Files.createDirectories(dir.getParent());
        Files.createDirectories(dir, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwx------")));
        KeyPairGenerator g = KeyPairGenerator.getInstance("EC");
        g.initialize(new ECGenParameterSpec("secp256r1"), RANDOM);
        KeyPair keys = g.generateKeyPair();
        // Created 0600 before a byte is written: the key is never readable by anyone but root.
        Path tmp = dir.resolve("agent.key.tmp");
        Files.deleteIfExists(tmp);
        Files.createFile(tmp, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")));
        Files.writeString(tmp, pem("PRIVATE KEY", keys.getPrivate().getEncoded()), StandardCharsets.US_ASCII);
        Files.writeString(pubFile, pem("PUBLIC KEY", keys.getPublic().getEncoded()), StandardCharsets.US_ASCII);
        Files.move(tmp, keyFile, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        return keys;
    }

    private static String strip(String pem) {
        return pem.replaceAll("-----[A-Z ]+-----", "").replaceAll("\\s", "");
    }

    static String pem(String type, byte[] der) {
        return "-----BEGIN " + type + "-----\n" + Base64.getMimeEncoder(64, new byte[] {'\n'}).encodeToString(der)
                + "\n-----END " + type + "-----\n";
    }

    static String fingerprint(X509Certificate cert) throws GeneralSecurityException {
        return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(cert.getEncoded()));
    }

    private static String describe(X509Certificate cert) {
        return cert.getSubjectX500Principal() + ", valid until " + cert.getNotAfter().toInstant();
    }

    /**
     * A key manager whose key and certificate change while the server runs. Its alias changes with
     * them, because OpenSSL's caching key manager factory caches the material by alias.
     */
    static final class SwappableKeyManager extends X509ExtendedKeyManager {

        private record Material(String alias, PrivateKey key, X509Certificate[] chain) {
        }

        private volatile Material current;
        private volatile Material previous;
        private int generation;

        synchronized void use(PrivateKey key, X509Certificate[] chain) {
            previous = current;
            current = new Material("kiln-" + (++generation), key, chain.clone());
        }

        /** The material of {@code alias}: a handshake that chose it just before a swap still completes. */
        private Material of(String alias) {
            Material m = current;
            if (m != null && m.alias().equals(alias)) {
                return m;
            }
            Material p = previous;
            return p != null && p.alias().equals(alias) ? p : null;
        }

        X509Certificate[] chain() {
            return current.chain().clone();
        }

        private String alias(String keyType) {
            Material m = current;
            return m != null && (keyType == null || keyType.equals(m.key().getAlgorithm())) ? m.alias() : null;
        }

        @Override
        public String chooseEngineServerAlias(String keyType, Principal[] issuers, SSLEngine engine) {
            return alias(keyType);
        }

        @Override
        public String chooseServerAlias(String keyType, Principal[] issuers, Socket socket) {
            return alias(keyType);
        }

        @Override
        public String[] getServerAliases(String keyType, Principal[] issuers) {
            String a = alias(keyType);
            return a == null ? null : new String[] {a};
        }

        @Override
        public X509Certificate[] getCertificateChain(String alias) {
            Material m = of(alias);
            return m == null ? null : m.chain().clone();
        }

        @Override
        public PrivateKey getPrivateKey(String alias) {
            Material m = of(alias);
            return m == null ? null : m.key();
        }

        @Override
        public String chooseClientAlias(String[] keyType, Principal[] issuers, Socket socket) {
            return null;
        }

        @Override
        public String[] getClientAliases(String keyType, Principal[] issuers) {
            return null;
        }
    }
}
