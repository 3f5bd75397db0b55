package dev.kiln.agent.instance;

import dev.kiln.agent.build.BuildUser;
import dev.kiln.agent.build.ProcessLauncher;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.io.InputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;

/**
 * Checks that only root reaches IMDS, whose user data holds the agent's TLS private key. The image
 * keeps the build user out with a packet filter (nftables table {@code inet kiln_imds}, loaded from
 * {@value #RULE_FILE} by {@value #UNIT}); this class checks that the filter works rather than that
 * it is listed: the agent (root) connects to the IMDS endpoint it reads, then a process started
 * exactly as builds are (the build {@link ProcessLauncher}, so the build user with its groups)
 * tries the same connection, which must fail.
 *
 * <p>The agent runs this once at start in ec2 mode ({@link #checkAtStart()}); a problem is logged
 * and reported by Status until the agent restarts. The agent never stops for it: an instance whose
 * agent is down cannot be seen or reached, which helps no one.
 */
public final class ImdsRootOnly {

    /** The IPv4 IMDS endpoint the AWS SDK uses unless told otherwise. */
    public static final String DEFAULT_HOST = "169.254.169.254";
    /** IMDS's port. */
    public static final int DEFAULT_PORT = 80;
    /** Where the image installs the packet filter (packer/kiln-imds.nft). */
    public static final String RULE_FILE = "/etc/kiln/imds.nft";
    /** The unit that loads the packet filter at boot (systemd/kiln-imds.service). */
    public static final String UNIT = "kiln-imds.service";
    /** The nftables table the packet filter is. */
    public static final String TABLE = "inet kiln_imds";

    /**
     * The probe: bash opens a TCP connection with its /dev/tcp redirection and exits 0 if it
     * connects. On failure bash names the path, e.g. "/dev/tcp/169.254.169.254/80: Connection
     * refused", which tells a refused connection from a probe that could not run at all.
     */
    static final String PROBE_SCRIPT = "exec 3<>\"/dev/tcp/$1/$2\"";

    private static final Logger LOG = LoggerFactory.getLogger(ImdsRootOnly.class);

    private final String host;
    private final int port;
    private final ProcessLauncher launcher;
    private final Supplier<BuildUser> buildUser;
    private final boolean agentIsRoot;
    private final Duration timeout;
    private volatile Optional<String> problem = Optional.empty();

    /**
     * @param endpoint    the IMDS endpoint the agent reads (kiln.imds.endpoint), or null for the SDK's
     *                    default, {@value #DEFAULT_HOST}:{@value #DEFAULT_PORT}
     * @param launcher    how builds are started (the probe runs the same way)
     * @param buildUser   resolves the build user (kiln.builds.user); may throw IllegalStateException
     * @param agentIsRoot whether the agent runs as root (else builds run as the agent's own user)
     * @param timeout     how long each connection attempt may take; a probe still waiting then
     *                    counts as refused (a filter that drops, not rejects)
     */
    public ImdsRootOnly(URI endpoint, ProcessLauncher launcher, Supplier<BuildUser> buildUser, boolean agentIsRoot,
                        Duration timeout) {
        String h = endpoint == null || endpoint.getHost() == null ? DEFAULT_HOST : endpoint.getHost();
        // URI keeps an IPv6 literal's brackets; neither InetAddress nor bash's /dev/tcp wants them.
        this.host = h.startsWith("[") && h.endsWith("]") ? h.substring(1, h.length() - 1) : h;
        this.port = endpoint == null || endpoint.getPort() < 0 ? DEFAULT_PORT : endpoint.getPort();
        this.launcher = launcher;
        this.buildUser = buildUser;
        this.agentIsRoot = agentIsRoot;
        this.timeout = timeout;
    }

    /** The endpoint checked, as host:port (an IPv6 host in brackets). */
    public String target() {
        return (host.contains(":") ? "[" + host + "]" : host) + ":" + port;
    }

    /**
     * Runs {@link #check()}, logs the outcome, and keeps a problem for {@link #problems()}.
     *
     * @return the problem, if any
     */
    public Optional<String> checkAtStart() {
        Optional<String> found;
        try {
            found = check();
        } catch (RuntimeException e) {
            // Fail closed: an unverified filter is reported like a missing one, never taken as working.
            found = Optional.of("cannot check that IMDS is root-only: " + e);
        }
        problem = found;
        found.ifPresent(p -> LOG.error("imds: {}", p));
        return found;
    }

    /** The problem {@link #checkAtStart()} found, for Status; empty when IMDS is root-only or before the check. */
    public List<String> problems() {
        return problem.stream().toList();
    }

    /**
     * Checks now.
     *
     * @return empty when the agent reaches IMDS and the build user is refused; otherwise what is
     *         wrong and what to do, in one message
     */
    public Optional<String> check() {
        if (!agentIsRoot) {
            String self = System.getProperty("user.name");
            return Optional.of("IMDS is not root-only: the agent does not run as root, so builds, boot scripts and"
                    + " services run as its own user '" + self + "', which reads the EC2 user data and the TLS key in it;"
                    + " run the agent as root (systemd/kiln-agent.service does)");
        }
        BuildUser user;
        try {
            user = buildUser.get();
        } catch (IllegalStateException e) {
            return Optional.of("cannot check that IMDS is root-only: " + e.getMessage());
        }
        // The agent reaches IMDS itself first: otherwise a refused probe would prove nothing.
        try (Socket socket = new Socket()) {
            socket.connect(new InetSocketAddress(InetAddress.getByName(host), port), (int) timeout.toMillis());
        } catch (IOException e) {
            return Optional.of("cannot check that IMDS is root-only: the agent itself cannot connect to " + target()
                    + " (" + e.getMessage() + ")");
        }
        Probe probe = probeAs(user);
        return switch (probe.outcome()) {
            case REFUSED -> {
                LOG.info("imds: only root reaches IMDS at {}: the build user '{}' is refused ({})", target(),
                        user.name(), probe.detail());
                yield Optional.empty();
            }
            case CONNECTED -> Optional.of("IMDS is not root-only: the build user '" + user.name() + "' connected to "
                    + target() + ", so builds, boot scripts and services can read the EC2 user data and this agent's"
                    + " TLS key in it. The image's packet filter (nftables table " + TABLE + " from " + RULE_FILE
                    + ", loaded by " + UNIT + ") is missing or does not cover this address: load it (systemctl restart "
                    + UNIT + ") or launch from a current kiln-agent image");
            case NOT_RUN -> Optional.of("cannot check that IMDS is root-only: the probe as the build user '"
                    + user.name() + "' did not run: " + probe.detail());
        };
    }

    /** What the probe as the build user saw. */
    enum Outcome {
        /** It connected: the build user reaches IMDS. */
        CONNECTED,
        /** The connection failed (refused, unreachable, or no answer within the timeout). */
        REFUSED,
        /** The probe itself could not run (no bash, setpriv failed): nothing is known. */
        NOT_RUN
    }

    /** The probe's outcome and, for messages, bash's error or why it did not run. */
    record Probe(Outcome outcome, String detail) {
    }

    /** Tries the connection as {@code user}, started as builds are. */
    Probe probeAs(BuildUser user) {
        Process process;
        try {
            process = launcher.start(List.of("bash", "-c", PROBE_SCRIPT, "kiln-imds-probe", host, Integer.toString(port)),
                    Path.of("/"), user, Map.of("PATH", "/usr/local/bin:/usr/bin:/bin", "LC_ALL", "C"));
        } catch (IOException e) {
            return new Probe(Outcome.NOT_RUN, e.getMessage());
        }
        CompletableFuture<String> stderr = CompletableFuture.supplyAsync(() -> read(process.getErrorStream()));
        CompletableFuture<String> stdout = CompletableFuture.supplyAsync(() -> read(process.getInputStream()));
        try {
            if (!process.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS)) {
                // A filter that drops: the SYN goes unanswered.
                process.destroyForcibly();
                return new Probe(Outcome.REFUSED, "no answer within " + timeout.toMillis() + " ms");
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            process.destroyForcibly();
            return new Probe(Outcome.NOT_RUN, "interrupted");
        }
        return classify(process.exitValue(), stderr.join() + stdout.join());
    }

    /** The outcome from the probe's exit status and what it printed. */
    static Probe classify(int exitStatus, String output) {
        String text = output.strip();
        if (exitStatus == 0) {
            return new Probe(Outcome.CONNECTED, "connected");
        }
        // "kiln-imds-probe: line 1: /dev/tcp/169.254.169.254/80: Connection refused"
        for (String line : text.lines().toList()) {
            int at = line.indexOf("/dev/tcp/");
            if (at >= 0) {
                int reason = line.indexOf(": ", at);
                return new Probe(Outcome.REFUSED, reason < 0 ? line.substring(at) : line.substring(reason + 2));
            }
        }
        return new Probe(Outcome.NOT_RUN, "exit status " + exitStatus + (text.isEmpty() ? "" : ": " + text));
    }

    private static String read(InputStream in) {
        try (in) {
            return new String(in.readNBytes(8192), StandardCharsets.UTF_8);
        } catch (IOException e) {
            return "";
        }
    }
}
