package dev.kiln.agent.serve;

import org.apache.sshd.common.NamedFactory;
import org.apache.sshd.common.cipher.BuiltinCiphers;
import org.apache.sshd.common.file.FileSystemFactory;
import org.apache.sshd.common.kex.BuiltinDHFactories;
import org.apache.sshd.common.keyprovider.KeyPairProvider;
import org.apache.sshd.common.mac.BuiltinMacs;
import org.apache.sshd.common.session.Session;
import org.apache.sshd.common.session.SessionContext;
import org.apache.sshd.common.session.SessionListener;
import org.apache.sshd.common.signature.BuiltinSignatures;
import org.apache.sshd.core.CoreModuleProperties;
import org.apache.sshd.scp.ScpModuleProperties;
import org.apache.sshd.server.ServerBuilder;
import org.apache.sshd.server.auth.pubkey.UserAuthPublicKeyFactory;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.nio.file.FileSystem;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * kiln-agent's embedded SSH server (Apache MINA SSHD): SFTP, scp, rsync and sshfs over one port,
 * public-key authentication only, a chrooted tree per user ({@link ServedTree}), no shell, and
 * no forwarding but the owner's local forwarding to allowed loopback ports ({@link PortForwarding}). A lifecycle class: build it from a {@link ServeConfig}, {@link #start()}
 * it, {@link #stop()} it; tests run it in-process on a free loopback port.
 *
 * <p>Algorithms: modern only. Key exchange curve25519 (and the hybrid post-quantum ones OpenSSH
 * prefers when both sides have them); ciphers AES-GCM first (hardware accelerated, the fastest
 * here) then chacha20-poly1305; encrypt-then-MAC SHA-2 MACs; host key ed25519; user keys ed25519,
 * RSA with SHA-2 signatures, ECDSA. All on the JDK's providers ({@link JdkEd25519} for ed25519)
 * except the post-quantum hybrids, which use BouncyCastle's lightweight classes.
 */
public final class SshServer {

    static {
        JdkEd25519.install(); // before MINA's SecurityUtils reads its registrars
    }

    private static final Logger LOG = LoggerFactory.getLogger(SshServer.class);

    private final ServeConfig config;
    private final HostKey hostKey;
    private final Map<UserKind, ServedTree> trees = new EnumMap<>(UserKind.class);
    private final Path emptyRoot;
    private final TreeFileSystemProvider provider;
    private final org.apache.sshd.server.SshServer sshd;
    private final KeyAuthenticator authenticator;
    private final PortForwarding forwarding;

    /**
     * Prepares the server: loads (or creates) the host key and checks the served directories.
     *
     * @throws IOException when the host key cannot be read or made, or a directory is missing
     */
    public SshServer(ServeConfig config) throws IOException {
        this.config = config;
        if (!Files.isDirectory(config.outputs())) {
            throw new IOException("the outputs directory " + config.outputs() + " (kiln.ssh.outputs) does not exist");
        }
        if (config.sources() != null && !Files.isDirectory(config.sources())) {
            throw new IOException("the sources directory " + config.sources() + " (kiln.ssh.sources) does not exist");
        }
        this.hostKey = HostKey.loadOrCreate(config.hostKey());
        for (UserKind kind : UserKind.values()) {
            trees.put(kind, ServedTree.of(kind, config.outputs(), config.sources()));
        }
        this.emptyRoot = Files.createDirectories(config.workDir().resolve("root"));
        this.provider = new TreeFileSystemProvider();
        Map<UserKind, AuthorizedKeys> keys = new EnumMap<>(UserKind.class);
        keys.put(UserKind.OWNER, config.ownerKeys());
        keys.put(UserKind.READER, config.readerKeys());
        this.authenticator = new KeyAuthenticator(keys);
        this.forwarding = new PortForwarding(config.forwardPorts());
        this.sshd = build();
    }

    /** OpenSSH's preference order; the post-quantum hybrids need BouncyCastle's lightweight classes. */
    private static final List<BuiltinDHFactories> KEY_EXCHANGES = List.of(BuiltinDHFactories.mlkem768x25519,
            BuiltinDHFactories.sntrup761x25519_openssh, BuiltinDHFactories.sntrup761x25519,
            BuiltinDHFactories.curve25519, BuiltinDHFactories.curve25519_libssh);

    private org.apache.sshd.server.SshServer build() {
        // Offer only what this build can compute: a key exchange offered but not computable fails
        // the connection of every client that prefers it (ML-KEM needs a BouncyCastle at least as
        // new as MINA SSHD's own, and OpenSSH 9.9+ clients prefer it).
        KEY_EXCHANGES.stream().filter(k -> !k.isSupported()).forEach(k -> LOG.warn(
                "ssh: key exchange {} cannot run in this build (BouncyCastle missing or too old); not offered", k.getName()));
        org.apache.sshd.server.SshServer s = ServerBuilder.builder()
                .cipherFactories(List.of(BuiltinCiphers.aes128gcm, BuiltinCiphers.aes256gcm, BuiltinCiphers.cc20p1305_openssh))
                .macFactories(List.of(BuiltinMacs.hmacsha256etm, BuiltinMacs.hmacsha512etm, BuiltinMacs.hmacsha256,
                        BuiltinMacs.hmacsha512))
                .keyExchangeFactories(NamedFactory.setUpTransformedFactories(true, KEY_EXCHANGES, ServerBuilder.DH2KEX))
                .signatureFactories(List.of(BuiltinSignatures.ed25519, BuiltinSignatures.rsaSHA512,
                        BuiltinSignatures.rsaSHA256, BuiltinSignatures.nistp256, BuiltinSignatures.nistp384,
                        BuiltinSignatures.nistp521))
                .forwardingFilter(forwarding)
                .channelFactories(forwarding.channelFactories())
                .build();
        s.setHost(config.host());
        s.setPort(config.port());
        s.setKeyPairProvider(KeyPairProvider.wrap(hostKey.keyPair()));
        s.setUserAuthFactories(List.of(UserAuthPublicKeyFactory.INSTANCE));
        s.setPublickeyAuthenticator(authenticator);
        s.setPasswordAuthenticator(null);
        s.setKeyboardInteractiveAuthenticator(null);
        s.setGSSAuthenticator(null);
        s.setHostBasedAuthenticator(null);
        s.setAgentFactory(null);
        ServeCommands commands = new ServeCommands(user -> trees.get(UserKind.ofUserName(user).orElseThrow()), config.sandbox(),
                config.accounts());
        s.setShellFactory(commands);
        s.setCommandFactory(commands);
        s.setSubsystemFactories(List.of(new LazySftp()));
        s.setFileSystemFactory(new TreeFileSystems());
        // Bound the unauthenticated phase and idle sessions; a login gets a few tries.
        CoreModuleProperties.AUTH_TIMEOUT.set(s, java.time.Duration.ofSeconds(30));
        CoreModuleProperties.MAX_AUTH_REQUESTS.set(s, 6);
        CoreModuleProperties.SERVER_IDENTIFICATION.set(s, "KilnAgent");
        // An sshfs mount may sit idle for hours: never drop a session for idleness. A heartbeat
        // every minute keeps NAT mappings alive, and TCP keepalives find clients that vanished.
        CoreModuleProperties.IDLE_TIMEOUT.set(s, java.time.Duration.ZERO);
        CoreModuleProperties.HEARTBEAT_INTERVAL.set(s, java.time.Duration.ofSeconds(60));
        CoreModuleProperties.SOCKET_KEEPALIVE.set(s, true);
        // No Nagle delay: SFTP is request/response with small packets (open, stat, close, the
        // last read of a file), which otherwise wait for the peer's delayed ACK (as OpenSSH does).
        CoreModuleProperties.TCP_NODELAY.set(s, true);
        // Rekey when the cipher's block count calls for it (RFC 4344: 64 GiB for AES-GCM, 1 GiB for
        // chacha20-poly1305), as OpenSSH does, not after every GiB: each key exchange halts a
        // session's data (a forward, a download) while the post-quantum hybrid is computed.
        CoreModuleProperties.REKEY_BYTES_LIMIT.set(s, 0L);
        // scp uploads are written like SFTP's and OpenSSH's, without a sync after every write.
        ScpModuleProperties.PROP_AUTO_SYNC_FILE_ON_WRITE.set(s, false);
        // The first connection starts the cipher's warm-up, which runs beside its key exchange and
        // login; an agent nobody connects to never pays for it.
        s.addSessionListener(new SessionListener() {
            @Override
            public void sessionCreated(Session session) {
                CipherWarmUp.startOnce();
            }
        });
        return s;
    }

    /** Starts listening. */
    public SshServer start() throws IOException {
        authenticator.problems().forEach((kind, problem) -> LOG.error("ssh: {} (user {})", problem, kind.userName()));
        sshd.start();
        LOG.info("ssh: serving {} (read-only){} on {}:{}; host key {}", config.outputs(),
                config.sources() == null ? "" : " and " + config.sources() + " (owner, read-write)",
                config.host(), port(), hostKey.fingerprint());
        return this;
    }

    /** Stops listening and closes every session. */
    public void stop() {
        try {
            sshd.stop(true);
        } catch (IOException e) {
            LOG.warn("ssh: stopping the server: {}", e.getMessage());
        }
    }

    /** The port it listens on (the real one when 0 was asked for). */
    public int port() {
        for (SocketAddress a : sshd.getBoundAddresses()) {
            if (a instanceof InetSocketAddress inet) {
                return inet.getPort();
            }
        }
        return sshd.getPort();
    }

    public HostKey hostKey() {
        return hostKey;
    }

    /** SSH sessions open now. */
    public int openSessions() {
        return sshd.getActiveSessions().size();
    }

    /** Closes every open session at once (draining); returns how many there were. */
    public int closeSessions() {
        var sessions = java.util.List.copyOf(sshd.getActiveSessions());
        sessions.forEach(session -> session.close(true));
        return sessions.size();
    }

    /** The loopback ports the owner may forward to now, ascending. */
    public List<Integer> forwardPorts() {
        return List.copyOf(new java.util.TreeSet<>(config.forwardPorts().ports()));
    }

    /** Forwarded connections ({@code ssh -L}) open now. */
    public int openForwards() {
        return forwarding.openConnections();
    }

    /** Where the open forwarded connections lead ({@code 127.0.0.1:8888}), sorted. */
    public List<String> openForwardTargets() {
        return forwarding.openTargets();
    }

    /** Closes every forwarded connection at once (draining); returns how many there were. */
    public int closeForwards() {
        return forwarding.closeConnections();
    }

    public boolean isRunning() {
        return sshd.isStarted();
    }

    /** Each session gets a file system of its user's tree, with {@code /} as its home. */
    private final class TreeFileSystems implements FileSystemFactory {
        private final Map<String, Boolean> unused = new ConcurrentHashMap<>();

        @Override
        public Path getUserHomeDir(SessionContext session) {
            return null;
        }

        @Override
        public FileSystem createFileSystem(SessionContext session) {
            UserKind kind = UserKind.ofUserName(session.getUsername())
                    .orElseThrow(() -> new UncheckedIOException(new IOException("unknown user")));
            return provider.newTreeFileSystem(emptyRoot, trees.get(kind), kind, config.accounts().of(kind));
        }
    }
}
