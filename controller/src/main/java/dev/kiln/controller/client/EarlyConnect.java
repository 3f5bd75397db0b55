package dev.kiln.controller.client;

import dev.kiln.controller.config.CliEnvironment;
import dev.kiln.controller.config.ControllerSettings;
import dev.kiln.controller.config.KilnPaths;
import dev.kiln.controller.fleet.Ec2Fleet;
import dev.kiln.controller.local.LocalAgent;
import dev.kiln.controller.local.LocalProvider;
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
 * its first call (docs/benchmarks.md).
 *
 * <p>It is a guess made from the command line alone, by the rule {@code AgentMixin} applies
 * (--agent, KILN_AGENT, config.yml, else the local agent), for the commands that talk to one agent
 * named by HOST:PORT or by default; an instance id is left to the command. Nothing depends on it:
 * a client {@link #claim claims} the channel only when its endpoint and TLS material are exactly
 * the guessed ones and the channel has not already failed, and otherwise makes its own as before;
 * an unclaimed channel is closed at exit. Any failure here is ignored, the command reports it
 * itself.
 */
public final class EarlyConnect {

    /** The commands that talk to one agent named by {@code --agent} or the defaults. */
    static final Set<String> COMMANDS = Set.of("status", "build", "logs", "builds", "cancel");

    record Early(AgentEndpoint endpoint, ClientTls tls, ManagedChannel channel) {
    }

    private static CompletableFuture<Early> early;
    private static final AtomicBoolean claimed = new AtomicBoolean();

    private EarlyConnect() {
    }

    /** Starts connecting to the agent {@code args} will most likely talk to, if it names one. */
    public static synchronized void start(CliEnvironment env, String[] args) {
        Optional<Target> target = target(args);
        if (target.isEmpty() || early != null) {
            return;
        }
        claimed.set(false);
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
        String given = ControllerSettings.load(env, paths).get("agent", target.agent()).orElse(null);
        if (given != null && (Ec2Fleet.isInstanceId(given) || LocalProvider.isInstanceId(given))) {
            return null;
        }
        AgentEndpoint endpoint = given != null ? AgentEndpoint.parse(given) : new LocalAgent(paths).endpoint().orElse(null);
        if (endpoint == null) {
            return null;
        }
        if (target.serverName() != null) {
            endpoint = endpoint.withServerName(target.serverName());
        }
        ClientTls tls = ClientTls.of(paths);
        ManagedChannel channel = AgentClient.channel(endpoint, tls.sslContext());
        channel.getState(true); // connect now, not at the first call
        return new Early(endpoint, tls, channel);
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
        } catch (Exception ex) {
            return Optional.empty();
        }
        if (e == null || !e.endpoint().equals(endpoint) || !e.tls().equals(tls)) {
            return Optional.empty();
        }
        if (!claimed.compareAndSet(false, true)) {
            return Optional.empty();
        }
        if (e.channel().getState(false) == ConnectivityState.TRANSIENT_FAILURE) {
            e.channel().shutdownNow();
            return Optional.empty();
        }
        return Optional.of(e.channel());
    }

    /** Closes the early channel unless a client claimed it (that client closes it). */
    public static void close() {
        CompletableFuture<Early> f;
        synchronized (EarlyConnect.class) {
            f = early;
            early = null;
        }
        if (f == null) {
            return;
        }
        f.thenAccept(e -> {
            if (e != null && claimed.compareAndSet(false, true)) {
                e.channel().shutdownNow();
            }
        });
    }
}
