package dev.kiln.controller.cli;

import dev.kiln.controller.client.AgentClient;
import dev.kiln.controller.client.AgentEndpoint;
import dev.kiln.controller.client.ClientTls;
import dev.kiln.controller.config.CliEnvironment;
import dev.kiln.controller.config.ControllerSettings;
import dev.kiln.controller.config.KilnPaths;
import io.grpc.ConnectivityState;
import io.grpc.ManagedChannel;

import java.util.Optional;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * The connection to the agent a command is about to talk to, opened on a thread of its own while
 * the CLI is still starting (the Micronaut context and picocli's model take about 0.2 s of the
 * main thread), so that the TCP and TLS handshakes are done or under way when the command makes
 * its first call (what that saves: docs/performance.md).
 *
 * <p>It is a guess made from the command line alone, by {@link AgentMixin}'s own rule (--agent,
 * KILN_AGENT, config.yml, else the local agent), for the commands that talk to one agent named by
 * HOST:PORT or by default; an instance id is left to the command ({@link AgentMixin#resolveDirect}). Nothing depends on it:
 * a client {@link #claim claims} the channel only when its endpoint and TLS material are exactly
 * the guessed ones and the channel has not already failed, and otherwise makes its own as before;
 * an unclaimed channel is closed at exit. Any failure here is ignored, the command reports it
 * itself.
 */
public final class EarlyConnect {

    /** The commands that talk to one agent named by {@code --agent} or the defaults. */
    static final Set<String> COMMANDS = Set.of("status", "build", "logs", "builds", "cancel");

    /** The early channel; {@code taken} once a client claimed it or it was closed. */
    record Early(AgentEndpoint endpoint, ClientTls tls, ManagedChannel channel, AtomicBoolean taken) {
    }

    private static CompletableFuture<Early> early;
    /** Set by {@link #close()}: the early thread makes no channel after it. */
    private static boolean closed;
    /** The channel the early thread made, for {@link #close()} to find before its future completes. */
    private static Early made;

    private EarlyConnect() {
    }

    /** Starts connecting to the agent {@code args} will most likely talk to, if it names one. */
    public static synchronized void start(CliEnvironment env, String[] args) {
        Optional<Target> target = target(args);
        if (target.isEmpty() || early != null) {
            return;
        }
        closed = false;
        made = null;
        CompletableFuture<Early> f = new CompletableFuture<>();
        Thread t = new Thread(() -> {
            try {
                f.complete(open(env, target.get()));
            } catch (RuntimeException | Error e) {
                f.complete(null); // the command meets the same problem and reports it
            }
        }, "kiln-early-connect");
        t.setDaemon(true);
        t.start();
        early = f;
    }

    /** What the command line says about the agent: the command, --agent and --tls-server-name. */
    record Target(String command, String agent, String serverName) {
    }

    /** The command and its agent options, for a command in {@link #COMMANDS}; empty otherwise. */
    static Optional<Target> target(String[] args) {
        String command = null;
        String agent = null;
        String serverName = null;
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            if (a.equals("--")) {
                break; // a build's own command follows
            }
            if (a.equals("-h") || a.equals("--help") || a.equals("-V") || a.equals("--version")) {
                return Optional.empty(); // answered without an agent
            }
            if (command == null) {
                if (!a.startsWith("-")) {
                    command = a;
                    if (!COMMANDS.contains(command)) {
                        return Optional.empty();
                    }
                }
                continue;
            }
            if (a.equals("--agent") && i + 1 < args.length) {
                agent = args[++i];
            } else if (a.startsWith("--agent=")) {
                agent = a.substring("--agent=".length());
            } else if (a.equals("--tls-server-name") && i + 1 < args.length) {
                serverName = args[++i];
            } else if (a.startsWith("--tls-server-name=")) {
                serverName = a.substring("--tls-server-name=".length());
            }
        }
        return command == null ? Optional.empty() : Optional.of(new Target(command, agent, serverName));
    }

    /** The guessed endpoint's channel, connecting; null when there is no guess. */
    private static Early open(CliEnvironment env, Target target) {
        KilnPaths paths = KilnPaths.from(env);
        AgentMixin named = new AgentMixin();
        named.agent = target.agent();
        named.serverName = target.serverName();
        AgentEndpoint endpoint = named.resolveDirect(ControllerSettings.load(env, paths), paths).orElse(null);
        if (endpoint == null) {
            return null;
        }
        ClientTls tls = ClientTls.of(paths);
        io.netty.handler.ssl.SslContext ssl = tls.sslContext();
        Early e;
        synchronized (EarlyConnect.class) {
            if (closed) {
                return null; // the command has ended: no channel, no new event loops
            }
            e = new Early(endpoint, tls, AgentClient.channel(endpoint, ssl), new AtomicBoolean());
            made = e;
        }
        e.channel().getState(true); // connect now, not at the first call
        return e;
    }

    /**
     * The early channel, once, when it was opened to exactly this endpoint with exactly this TLS
     * material and has not failed (a failed one is closed: a new channel reports the failure as
     * a command always did). Waits at most a second for the early thread.
     */
    public static Optional<ManagedChannel> claim(AgentEndpoint endpoint, ClientTls tls) {
        CompletableFuture<Early> f;
        synchronized (EarlyConnect.class) {
            f = early;
        }
        if (f == null) {
            return Optional.empty();
        }
        Early e;
        try {
            e = f.get(1, TimeUnit.SECONDS);
        } catch (InterruptedException ex) {
            Thread.currentThread().interrupt();
            return Optional.empty();
        } catch (Exception ex) {
            return Optional.empty();
        }
        if (e == null || !e.endpoint().equals(endpoint) || !e.tls().equals(tls)) {
            return Optional.empty();
        }
        if (!e.taken().compareAndSet(false, true)) {
            return Optional.empty();
        }
        if (e.channel().getState(false) == ConnectivityState.TRANSIENT_FAILURE) {
            e.channel().shutdownNow();
            return Optional.empty();
        }
        return Optional.of(e.channel());
    }

    /**
     * Closes the early channel unless a client claimed it (that client closes it), and keeps the
     * early thread from making one if it has not yet: called when the command has ended, before
     * the event loops stop.
     */
    public static void close() {
        Early e;
        synchronized (EarlyConnect.class) {
            closed = true;
            early = null;
            e = made;
            made = null;
        }
        if (e != null && e.taken().compareAndSet(false, true)) {
            e.channel().shutdownNow();
        }
    }
}
