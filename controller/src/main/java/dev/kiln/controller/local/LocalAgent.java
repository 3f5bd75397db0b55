package dev.kiln.controller.local;

import com.google.common.util.concurrent.ListenableFuture;
import dev.kiln.controller.ExitCodes;
import dev.kiln.controller.KilnException;
import dev.kiln.controller.client.AgentClient;
import dev.kiln.controller.client.AgentEndpoint;
import dev.kiln.controller.client.ClientTls;
import dev.kiln.controller.config.KilnPaths;
import dev.kiln.controller.fleet.AgentUserData;
import dev.kiln.controller.pki.FleetCa;
import dev.kiln.proto.agent.v1.StatusResponse;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;

import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.Consumer;

/**
 * A kiln-agent in local mode, run as a background process of this user. Everything it needs lives
 * in one directory: its settings ({@code agent.yml}), certificate and key, pid file, log, the
 * address it listens on, and the agent's own state directory.
 */
public final class LocalAgent {

    /** A running local agent. */
    public record Running(long pid, AgentEndpoint endpoint) {
    }

    /**
     * What the local agent serves over its embedded SSH server.
     *
     * @param outputs the directory served read-only as /outputs (null: an empty directory of the agent's)
     * @param sources the directory the owner may upload into as /sources (null: the agent's own)
     * @param sshPort the SSH port; {@link #DEFAULT_SSH_PORT} falls back to a free port when taken, 0 picks a free one
     */
    public record Serve(Path outputs, Path sources, int sshPort) {
        public static final int DEFAULT_SSH_PORT = 2222;

        public static Serve defaults() {
            return new Serve(null, null, DEFAULT_SSH_PORT);
        }
    }

    /** How often start-up checks that the agent process is still alive while its first call waits. */
    private static final Duration READY_POLL = Duration.ofMillis(100);

    private static final String DIR_MARK = "-Dkiln-local-agent-dir=";

    /** The first line of the agent.yml that {@code kiln up --local} writes. */
    static final String UP_COMMENT = "Written by `kiln up --local`; rewritten on every start.";

    private final KilnPaths paths;
    private final Path dir;
    private final LocalAgentConfig config;

    /**
     * The agent JVM's options unless AGENT_JAVA_OPTS says otherwise: the systemd unit's (a bounded
     * heap: the agent streams from disk and needs little memory; without a cap the JVM grows
     * towards a quarter of the machine's RAM).
     */
    public static final List<String> DEFAULT_JAVA_OPTIONS = List.of("-Xms24m", "-Xmx160m", "-XX:MaxMetaspaceSize=128m",
            "-XX:ReservedCodeCacheSize=48m", "-XX:+UseSerialGC", "-XX:+ExitOnOutOfMemoryError",
            "-Dio.netty.allocator.type=unpooled", "-XX:+UnlockExperimentalVMOptions", "-XX:TrimNativeHeapInterval=5000");

    /**
     * The agent's environment as the systemd unit sets it: glibc's malloc arenas capped at two
     * (by default one per thread that allocates, up to 8 per core). A value already in the
     * environment is kept.
     */
    public static final Map<String, String> DEFAULT_ENVIRONMENT = Map.of("MALLOC_ARENA_MAX", "2");

    private List<String> javaOptions = DEFAULT_JAVA_OPTIONS;
    private boolean classArchive = true;

    public LocalAgent(KilnPaths paths) {
        this(paths, paths.localAgentDir());
    }

    /** A local agent kept in {@code dir} (the local provider keeps one per instance). */
    public LocalAgent(KilnPaths paths, Path dir) {
        this.paths = paths;
        this.dir = dir;
        this.config = new LocalAgentConfig(paths, dir);
    }

    /**
     * Uses {@code agentJavaOpts} (AGENT_JAVA_OPTS, as in the systemd unit: options separated by
     * spaces) for the agent's JVM when present and not blank; else {@link #DEFAULT_JAVA_OPTIONS}.
     */
    public LocalAgent javaOptions(Optional<String> agentJavaOpts) {
        this.javaOptions = agentJavaOpts.map(String::strip).filter(o -> !o.isEmpty())
                .map(o -> List.of(o.split("\\s+"))).orElse(DEFAULT_JAVA_OPTIONS);
        return this;
    }

    /** Whether the agent maps an AppCDS archive of its classes, made on first use (KILN_NO_CDS turns it off). */
    public LocalAgent classArchive(boolean use) {
        this.classArchive = use;
        return this;
    }

    /** Uses exactly these options for the agent's JVM. */
    LocalAgent javaOptions(List<String> options) {
        this.javaOptions = List.copyOf(options);
        return this;
    }

    /** The files of an agent in this directory. */
    LocalAgentConfig config() {
        return config;
    }

    public List<String> javaOptions() {
        return javaOptions;
    }

    public Path dir() {
        return dir;
    }

    public Path pidFile() {
        return dir.resolve("agent.pid");
    }

    public Path logFile() {
        return dir.resolve("agent.log");
    }

    public Path endpointFile() {
        return dir.resolve("endpoint");
    }

    /** The endpoint of the local agent last started, if there is one. */
    public Optional<AgentEndpoint> endpoint() {
        try {
            if (!Files.exists(endpointFile())) {
                return Optional.empty();
            }
            return Optional.of(AgentEndpoint.parse(Files.readString(endpointFile()).trim()));
        } catch (IOException e) {
            return Optional.empty();
        }
    }

    /** The running local agent: the pid file names a live process that is this directory's agent. */
    public Optional<Running> running() {
        Optional<ProcessHandle> process = process();
        Optional<AgentEndpoint> endpoint = endpoint();
        if (process.isEmpty() || endpoint.isEmpty()) {
            return Optional.empty();
        }
        return Optional.of(new Running(process.get().pid(), endpoint.get()));
    }

    /**
     * Starts the agent unless it already runs, and waits until it answers over mutual TLS.
     *
     * @param ca       the fleet CA, which issues the agent's certificate
     * @param tls      the controller's client TLS material, to check the agent answers
     * @param agentJar kiln-agent's jar
     * @param port     port to listen on (loopback); 0 picks a free one
     * @param wait     how long to wait for the agent to answer
     * @param narrate  progress messages for the user
     */
    public Running up(FleetCa ca, ClientTls tls, Path agentJar, int port, Duration wait, Consumer<String> narrate) {
        return up(ca, tls, agentJar, port, Serve.defaults(), wait, Map.of(), narrate);
    }

    /**
     * {@link #up(FleetCa, ClientTls, Path, int, Duration, Consumer)} with what to serve over SSH and the lease
     * settings ({@code kiln.lease.*} keys without the prefix, e.g. ttl). The
     * agent serves {@code serve.outputs()} read-only and {@code serve.sources()} to the owner; the
     * controller's SSH key ({@code id_ed25519.pub}) is authorized both as {@code owner} and as
     * {@code reader}.
     */
    public Running up(FleetCa ca, ClientTls tls, Path agentJar, int port, Serve serve, Duration wait,
                      Map<String, String> lease, Consumer<String> narrate) {
        Optional<Running> already = running();
        if (already.isPresent()) {
            narrate.accept("local agent already running (pid " + already.get().pid() + ") on " + already.get().endpoint()
                    + (serve.outputs() != null || serve.sources() != null
                    ? "; it keeps serving what it was started with (`kiln down --local` first to change --serve/--sources)" : ""));
            return already.get();
        }
        if (!Files.isRegularFile(agentJar)) {
            throw new KilnException(ExitCodes.CONFIG, "kiln-agent jar not found at " + agentJar
                    + "; build it with `mvn -B -ntp -pl agent -am package -DskipTests` or set KILN_AGENT_JAR");
        }
        try {
            Files.createDirectories(dir.resolve("state"));
            int chosen = port == 0 ? freeLoopbackPort() : port;
            writeTls(ca);
            Path outputs = serve.outputs() != null ? serve.outputs().toAbsolutePath() : Files.createDirectories(dir.resolve("outputs"));
            if (!Files.isDirectory(outputs)) {
                throw new KilnException(ExitCodes.USAGE, "--serve " + outputs + " is not a directory");
            }
            Path sources = serve.sources() != null ? serve.sources().toAbsolutePath() : dir.resolve("sources");
            int sshPort = serve.sshPort();
            if (sshPort == Serve.DEFAULT_SSH_PORT && !portFree(sshPort)) {
                sshPort = freeLoopbackPort();
                narrate.accept("port " + Serve.DEFAULT_SSH_PORT + " is taken; the agent's SSH server uses " + sshPort);
            }
            Map<String, Object> kiln = settings(chosen);
            kiln.put("ssh", config.sshSettings(outputs, sources, sshPort));
            if (!lease.isEmpty()) {
                kiln.put("lease", new LinkedHashMap<>(lease));
            }
            return start(AgentUserData.write(UP_COMMENT, kiln), chosen, agentJar, tls, wait, narrate);
        } catch (IOException e) {
            throw new KilnException(ExitCodes.FAILURE, "cannot start the local agent in " + dir + ": " + e.getMessage(), e);
        }
    }

    /**
     * Starts an agent in this directory with the given settings (which must listen on 127.0.0.1
     * at {@code port}, with state in {@link #stateDir()}), and waits until it answers.
     */
    public Running start(String settingsYaml, int port, Path agentJar, ClientTls tls, Duration wait, Consumer<String> narrate) {
        AgentEndpoint endpoint = new AgentEndpoint("127.0.0.1", port, null);
        try {
            Files.createDirectories(stateDir());
            List<String> options = new ArrayList<>(javaOptions);
            if (classArchive) {
                options.addAll(AgentClassArchive.options(agentJar, paths, javaOptions, dir, tls, narrate));
            }
            Files.writeString(dir.resolve("agent.yml"), settingsYaml, StandardCharsets.UTF_8);
            // A new local agent is a new "instance": its lease starts now, not when the last one did.
            Files.deleteIfExists(stateDir().resolve("lease.properties"));
            narrate.accept("starting kiln-agent (local mode) on " + endpoint + "; log: " + logFile());
            Process process = spawn(options, agentJar);
            Files.writeString(pidFile(), process.pid() + "\n", StandardCharsets.US_ASCII);
            Files.writeString(endpointFile(), endpoint + "\n", StandardCharsets.US_ASCII);

            awaitReady(process, endpoint, tls, wait);
            return new Running(process.pid(), endpoint);
        } catch (IOException e) {
            throw new KilnException(ExitCodes.FAILURE, "cannot start the local agent in " + dir + ": " + e.getMessage(), e);
        }
    }

    /** Starts the agent JVM in this directory with these options, detached from the terminal. */
    Process spawn(List<String> options, Path agentJar) throws IOException {
        String java = ProcessHandle.current().info().command().orElse("java");
        List<String> command = new ArrayList<>();
        if (Files.isExecutable(Path.of("/usr/bin/setsid"))) {
            command.add("/usr/bin/setsid"); // leave the terminal's session: Ctrl-C there must not stop it
        }
        command.addAll(List.of(java, DIR_MARK + dir));
        command.addAll(options);
        command.addAll(List.of("-jar", agentJar.toString()));
        ProcessBuilder pb = new ProcessBuilder(command)
                .directory(dir.toFile())
                .redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null")))
                .redirectOutput(ProcessBuilder.Redirect.appendTo(logFile().toFile()))
                .redirectErrorStream(true);
        Map<String, String> env = pb.environment();
        env.keySet().removeIf(k -> k.startsWith("KILN_") || k.startsWith("MICRONAUT_"));
        env.put("MICRONAUT_CONFIG_FILES", dir.resolve("agent.yml").toString());
        DEFAULT_ENVIRONMENT.forEach(env::putIfAbsent);
        return pb.start();
    }

    /** The agent's own state directory. */
    public Path stateDir() {
        return dir.resolve("state");
    }

    /** Writes the agent's certificate, key and the fleet CA into this directory ({@link LocalAgentConfig#writeTls}). */
    public void writeTls(FleetCa ca) throws IOException {
        config.writeTls(ca);
    }

    /** The {@code kiln} settings of an agent in this directory ({@link LocalAgentConfig#settings}). */
    public Map<String, Object> settings(int port) {
        return config.settings(port);
    }

    /**
     * Stops the local agent this directory's pid file names, and only that process: TERM, then
     * KILL after {@code grace}.
     *
     * @return the pid stopped, or empty if none was running
     */
    public Optional<Long> down(Duration grace) {
        Optional<ProcessHandle> process = process();
        try {
            if (process.isEmpty()) {
                Files.deleteIfExists(pidFile());
                return Optional.empty();
            }
            ProcessHandle p = process.get();
            p.destroy();
            if (!waitForExit(p, grace)) {
                p.destroyForcibly();
                if (!waitForExit(p, Duration.ofSeconds(10))) {
                    throw new KilnException(ExitCodes.TIMEOUT, "local agent (pid " + p.pid() + ") did not stop after TERM and KILL");
                }
            }
            Files.deleteIfExists(pidFile());
            return Optional.of(p.pid());
        } catch (IOException e) {
            throw new KilnException(ExitCodes.FAILURE, "cannot remove " + pidFile() + ": " + e.getMessage(), e);
        }
    }

    /** The agent process, if it runs. */
    public Optional<ProcessHandle> process() {
        long pid;
        try {
            if (!Files.exists(pidFile())) {
                return Optional.empty();
            }
            pid = Long.parseLong(Files.readString(pidFile()).trim());
        } catch (IOException | NumberFormatException e) {
            return Optional.empty();
        }
        // The pid file may be stale and the number reused: only a process whose command line
        // carries this directory's mark is ours.
        return ProcessHandle.of(pid).filter(ProcessHandle::isAlive).filter(this::isOurs);
    }

    private boolean isOurs(ProcessHandle p) {
        try {
            byte[] raw = Files.readAllBytes(Path.of("/proc", Long.toString(p.pid()), "cmdline"));
            List<String> args = List.of(new String(raw, StandardCharsets.UTF_8).split("\0"));
            return args.contains(DIR_MARK + dir);
        } catch (IOException e) {
            return p.info().arguments().map(a -> List.of(a).contains(DIR_MARK + dir)).orElse(false);
        }
    }

    void awaitReady(Process process, AgentEndpoint endpoint, ClientTls tls, Duration wait) {
        try (AgentClient client = new AgentClient(endpoint, tls, wait)) {
            ListenableFuture<StatusResponse> answer = client.statusWhenReady();
            while (true) {
                try {
                    answer.get(READY_POLL.toMillis(), TimeUnit.MILLISECONDS);
                    return;
                } catch (TimeoutException e) {
                    if (!process.isAlive()) {
                        answer.cancel(true);
                        throw new KilnException(ExitCodes.FAILURE, "the local agent exited with status " + process.exitValue()
                                + " during start-up; its log (" + logFile() + ") ends with:\n" + tail(logFile(), 15));
                    }
                    client.reconnectNow(); // the agent listens within a second or two: skip gRPC's longer backoff
                } catch (ExecutionException e) {
                    if (e.getCause() instanceof StatusRuntimeException s && s.getStatus().getCode() == Status.Code.DEADLINE_EXCEEDED) {
                        throw new KilnException(ExitCodes.TIMEOUT, "the local agent (pid " + process.pid() + ") did not answer on "
                                + endpoint + " within " + wait.toSeconds() + "s; see " + logFile());
                    }
                    throw e.getCause() instanceof StatusRuntimeException s ? client.translate(s)
                            : new KilnException(ExitCodes.FAILURE, "the local agent's status call failed: " + e.getCause(), e);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    answer.cancel(true);
                    throw new KilnException(ExitCodes.FAILURE, "interrupted while waiting for the local agent (pid " + process.pid()
                            + ") to answer on " + endpoint, e);
                }
            }
        }
    }

    private static boolean portFree(int port) {
        try (ServerSocket s = new ServerSocket()) {
            s.bind(new InetSocketAddress(InetAddress.getLoopbackAddress(), port));
            return true;
        } catch (IOException e) {
            return false;
        }
    }

    private static boolean waitForExit(ProcessHandle p, Duration d) {
        try {
            p.onExit().get(d.toMillis(), java.util.concurrent.TimeUnit.MILLISECONDS);
            return true;
        } catch (java.util.concurrent.TimeoutException e) {
            return false;
        } catch (java.util.concurrent.ExecutionException e) {
            return !p.isAlive();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return !p.isAlive();
        }
    }

    static String tail(Path file, int lines) {
        try {
            List<String> all = Files.readAllLines(file, StandardCharsets.UTF_8);
            return String.join("\n", all.subList(Math.max(0, all.size() - lines), all.size()));
        } catch (IOException e) {
            return "(cannot read " + file + ": " + e.getMessage() + ")";
        }
    }

    /** A free TCP port on 127.0.0.1 (free now; the agent binds it moments later). */
    public static int freeLoopbackPort() throws IOException {
        try (ServerSocket s = new ServerSocket()) {
            s.setReuseAddress(true);
            s.bind(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0));
            return s.getLocalPort();
        }
    }
}
