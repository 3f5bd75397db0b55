package dev.kiln.agent.serve;

import dev.kiln.agent.build.BuildUser;
import dev.kiln.agent.fs.Beneath;
import dev.kiln.agent.config.AgentMode;
import dev.kiln.agent.config.AgentSettings;
import dev.kiln.agent.config.BuildSettings;
import dev.kiln.agent.config.SshSettings;
import jakarta.annotation.PreDestroy;
import jakarta.inject.Singleton;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.Optional;
import java.util.List;
import java.util.Map;

/**
 * The agent's serving feature: builds the {@link SshServer} from {@code kiln.ssh.*} and runs it
 * for the agent's lifetime when {@code kiln.ssh.enabled} is true. The launcher starts it; the
 * gRPC Status reports its port and host key.
 */
@Singleton
public class Serving {

    private static final Logger LOG = LoggerFactory.getLogger(Serving.class);

    /** The default port in local mode; on an instance it is 22 (the AMI moves the system sshd). */
    public static final int LOCAL_PORT = 2222;

    private final SshSettings ssh;
    private final AgentSettings agent;
    private final BuildSettings builds;
    private final ForwardPorts forwardPorts;
    private SshServer server;

    @jakarta.inject.Inject
    public Serving(SshSettings ssh, AgentSettings agent, BuildSettings builds, ForwardPorts forwardPorts) {
        this.ssh = ssh;
        this.agent = agent;
        this.builds = builds;
        this.forwardPorts = forwardPorts;
    }

    /** Serving that forwards only what {@code kiln.ssh.forward-ports} lists. */
    public Serving(SshSettings ssh, AgentSettings agent, BuildSettings builds) {
        this(ssh, agent, builds, ConfiguredForwardPorts.listed(ssh));
    }

    /**
     * The SSH server was not started because what it should serve is not there: its boot mount
     * failed, or the directory cannot be made. The agent keeps running (and its lease counting),
     * so the failure can be seen with {@code kiln volumes} and fixed.
     */
    public static final class NotServing extends Exception {
        public NotServing(String message) {
            super(message);
        }
    }

    /** The configuration {@code kiln.ssh.*} stands for. */
    ServeConfig config() {
        try {
            return config(Map.of());
        } catch (NotServing e) {
            throw new IllegalArgumentException(e.getMessage(), e);
        }
    }

    /**
     * The configuration {@code kiln.ssh.*} stands for, given the boot mounts that failed (mount
     * point to message): nothing under a failed mount is served or created, since that would put
     * uploads on the root disk. A served directory that is missing on a mounted volume (a new one)
     * is created for the build user.
     */
    ServeConfig config(Map<Path, String> failedMounts) throws NotServing {
        if (ssh.outputs() == null || ssh.outputs().isBlank()) {
            throw new IllegalArgumentException("kiln.ssh.enabled is true but kiln.ssh.outputs is not set "
                    + "(the directory to serve read-only)");
        }
        Path outputs = Path.of(ssh.outputs());
        for (Path p : ssh.sources() == null ? List.of(outputs) : List.of(outputs, Path.of(ssh.sources()))) {
            for (Map.Entry<Path, String> f : failedMounts.entrySet()) {
                if (p.startsWith(f.getKey())) {
                    throw new NotServing("not serving over SSH: " + p + " is on " + f.getKey() + ", whose boot mount failed");
                }
            }
        }
        boolean ec2 = agent.mode() == AgentMode.EC2;
        String host = ssh.host() != null ? ssh.host() : ec2 ? "0.0.0.0" : "127.0.0.1";
        int port = ssh.port() != null ? ssh.port() : ec2 ? 22 : LOCAL_PORT;
        Path dir = agent.stateDir().resolve("ssh");
        Path hostKey = ssh.hostKey() != null ? Path.of(ssh.hostKey()) : dir.resolve("ssh_host_ed25519_key");
        BuildUser buildUser = BuildUser.resolve(builds.user());
        ServeAccounts accounts = ServeAccounts.resolve(ssh.user(), buildUser);
        Path sources = ssh.sources() == null ? null : Path.of(ssh.sources());
        // A missing directory is the build user's: made by root under directories only root can
        // change (the agent's own state, a mount point), else with the build user's own access,
        // so a link the build user put on the way leads nowhere it could not write itself.
        if (sources != null && !Files.isDirectory(sources)) {
            try {
                makeForBuildUser(sources, buildUser);
            } catch (IOException e) {
                throw new IllegalArgumentException("kiln.ssh.sources: cannot create " + sources + ": " + e.getMessage(), e);
            }
        }
        if (!Files.isDirectory(outputs)) {
            if (failedMounts.isEmpty() && !Files.exists(outputs.getParent() == null ? outputs : outputs.getParent())) {
                throw new IllegalArgumentException("kiln.ssh.outputs: " + outputs + " is not a directory");
            }
            try {
                makeForBuildUser(outputs, buildUser);
            } catch (IOException e) {
                throw new NotServing("not serving over SSH: kiln.ssh.outputs " + outputs + " is not a directory and cannot be"
                        + " made (" + e.getMessage() + ")");
            }
        }
        return new ServeConfig(host, port, hostKey, outputs, sources,
                new AuthorizedKeys("kiln.ssh.owner-keys", ssh.ownerKeys()),
                new AuthorizedKeys("kiln.ssh.reader-keys", ssh.readerKeys()),
                dir, new BwrapSandbox(), accounts, forwardPorts);
    }

    /** Creates {@code dir} and its missing parents for the build user (see {@link #config}). */
    private static void makeForBuildUser(Path dir, BuildUser buildUser) throws IOException {
        if (!BuildUser.agentIsRoot()) {
            Files.createDirectories(dir);
            return;
        }
        Path existing = dir.toAbsolutePath().normalize();
        while (existing.getParent() != null && !Files.exists(existing, LinkOption.NOFOLLOW_LINKS)) {
            existing = existing.getParent();
        }
        if (Beneath.onlyRootCanChange(existing)) {
            Beneath.makeDirectories(dir, p -> {
                Files.setAttribute(p, "unix:uid", buildUser.uid(), LinkOption.NOFOLLOW_LINKS);
                Files.setAttribute(p, "unix:gid", buildUser.gid(), LinkOption.NOFOLLOW_LINKS);
            });
        } else {
            buildUser.access().run(() -> Files.createDirectories(dir));
        }
    }

    /**
     * Starts the server when serving is enabled.
     *
     * @throws IllegalArgumentException for a configuration problem (names the setting)
     * @throws IOException              when the host key cannot be used or the port cannot be bound
     */
    public synchronized void start() throws IOException {
        try {
            start(Map.of());
        } catch (NotServing e) {
            throw new IllegalArgumentException(e.getMessage(), e);
        }
    }

    /**
     * Starts the server when serving is enabled, unless what it serves is on a failed boot mount.
     *
     * @throws NotServing when it did not start for that reason (the caller reports it and carries on)
     */
    public synchronized void start(Map<Path, String> failedMounts) throws IOException, NotServing {
        if (!ssh.enabled() || server != null) {
            return;
        }
        ServeConfig config = config(failedMounts);
        if ((ssh.ownerKeys() == null || ssh.ownerKeys().isBlank()) && (ssh.readerKeys() == null || ssh.readerKeys().isBlank())) {
            LOG.warn("ssh: neither kiln.ssh.owner-keys nor kiln.ssh.reader-keys is set; nobody can log in");
        }
        SshServer s = new SshServer(config);
        try {
            s.start();
        } catch (IOException e) {
            s.stop();
            throw new IOException("cannot listen on " + config.host() + ":" + config.port() + " (kiln.ssh.host, kiln.ssh.port): "
                    + e.getMessage(), e);
        }
        server = s;
    }

    /** The running server, if serving. */
    public synchronized Optional<SshServer> server() {
        return Optional.ofNullable(server);
    }

    @PreDestroy
    public synchronized void stop() {
        if (server != null) {
            server.stop();
            server = null;
        }
    }
}
