package dev.kiln.controller.cli;

import dev.kiln.controller.client.AgentClient;
import dev.kiln.controller.client.AgentEndpoint;
import dev.kiln.controller.client.ClientTls;
import dev.kiln.controller.config.CliEnvironment;
import dev.kiln.controller.config.ControllerSettings;
import dev.kiln.controller.config.KilnPaths;
import dev.kiln.controller.fleet.ManagedInstance;
import dev.kiln.controller.local.LocalProvider;
import io.grpc.ConnectivityState;
import io.grpc.ManagedChannel;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * The connection to the agent a command is about to talk to, opened on a thread of its own while
 * the CLI is still starting (the Micronaut context and picocli's model take about 0.2 s of the
 * main thread), so that the TCP and TLS handshakes are done or under way when the command makes
 * its first call (what that saves: docs/performance.md). For {@code kiln ls} on the local
 * provider it opens one to every running instance's agent, as the fleet's records name them.
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

    /** The command that asks every agent of the fleet ({@link #fleetTarget}). */
    static final String FLEET_COMMAND = "ls";

    /** An early channel, opened at {@code opened} (System.nanoTime); {@code taken} once a client claimed it or it was closed. */
    record Early(AgentEndpoint endpoint, ClientTls tls, ManagedChannel channel, AtomicBoolean taken, long opened) {
    }

    /** A claimed early channel and when it began to connect (System.nanoTime). */
    public record Claimed(ManagedChannel channel, long opened) {
    }

    private static CompletableFuture<List<Early>> early;
    /** Set by {@link #close()}: the early thread makes no channel after it. */
    private static boolean closed;
    /** The channels the early thread made, for {@link #close()} to find before its future completes. */
    private static List<Early> made = new ArrayList<>();

    private EarlyConnect() {
    }

    /**
     * Starts connecting to the agent {@code args} will most likely talk to, if it names one, or to
     * the local fleet's agents for {@code kiln ls}.
     */
    public static synchronized void start(CliEnvironment env, String[] args) {
        if (early != null) {
            return;
        }
        Optional<Target> target = target(args);
        Optional<FleetTarget> fleet = target.isPresent() ? Optional.empty() : fleetTarget(args);
        if (target.isEmpty() && fleet.isEmpty()) {
            return;
        }
        closed = false;
        made = new ArrayList<>();
        CompletableFuture<List<Early>> f = new CompletableFuture<>();
        Thread t = new Thread(() -> {
            try {
                f.complete(target.isPresent() ? open(env, target.get()) : openFleet(env, fleet.get()));
            } catch (RuntimeException | Error e) {
                f.complete(List.of()); // the command meets the same problem and reports it
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
        return scan(args, COMMANDS, "--agent", "--tls-server-name")
                .map(o -> new Target(o.get(""), o.get("--agent"), o.get("--tls-server-name")));
    }

    /** What the command line of {@code kiln ls} says about its fleet: --provider and --address. */
    record FleetTarget(String provider, String address) {
    }

    /** The fleet options of {@code kiln ls}; empty for any other command, or when it only asks for help. */
    static Optional<FleetTarget> fleetTarget(String[] args) {
        return scan(args, Set.of(FLEET_COMMAND), "--provider", "--address")
                .map(o -> new FleetTarget(o.get("--provider"), o.get("--address")));
    }

    /**
     * The command (under the key "") and the values of these options ({@code --name VALUE} or
     * {@code --name=VALUE}) up to a {@code --}; empty when the command is not one of
     * {@code commands} or the line asks for help or the version, which need no agent.
     */
    private static Optional<Map<String, String>> scan(String[] args, Set<String> commands, String... options) {
        Map<String, String> found = new HashMap<>();
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            if (a.equals("--")) {
                break; // a build's own command follows
            }
            if (a.equals("-h") || a.equals("--help") || a.equals("-V") || a.equals("--version")) {
                return Optional.empty();
            }
            if (!found.containsKey("")) {
                if (!a.startsWith("-")) {
                    if (!commands.contains(a)) {
                        return Optional.empty();
                    }
                    found.put("", a);
                }
                continue;
            }
            for (String o : options) {
                if (a.equals(o) && i + 1 < args.length) {
                    found.put(o, args[++i]);
                } else if (a.startsWith(o + "=")) {
                    found.put(o, a.substring(o.length() + 1));
                }
            }
        }
        return found.containsKey("") ? Optional.of(found) : Optional.empty();
    }

    /**
     * A connecting channel to each running local instance's agent, at the address `kiln ls` will
     * use (FleetMixin's rule); none on EC2, whose instances are known only after an API call.
     */
    private static List<Early> openFleet(CliEnvironment env, FleetTarget target) {
        KilnPaths paths = KilnPaths.from(env);
        ControllerSettings settings = ControllerSettings.load(env, paths);
        if (!settings.get("provider", target.provider()).orElse("local").equals("local")) {
            return List.of();
        }
        String rule = settings.get("address", target.address()).orElse("auto");
        // Read only: the command itself retires instances whose agent is gone, and says so.
        List<ManagedInstance> instances = new LocalProvider(paths).observeOnly().narrate(s -> { }).list(List.of());
        ClientTls tls = ClientTls.of(paths);
        io.netty.handler.ssl.SslContext ssl = null;
        List<Early> opened = new ArrayList<>();
        for (ManagedInstance m : instances) {
            AgentEndpoint endpoint = m.state().equals("running") ? m.endpoint(rule) : null;
            if (endpoint == null) {
                continue;
            }
            ssl = ssl != null ? ssl : tls.sslContext();
            Early e;
            synchronized (EarlyConnect.class) {
                if (closed) {
                    break;
                }
                e = new Early(endpoint, tls, AgentClient.channel(endpoint, ssl), new AtomicBoolean(), System.nanoTime());
                made.add(e);
            }
            e.channel().getState(true);
            opened.add(e);
        }
        return opened;
    }

    /** The guessed endpoint's channel, connecting; none when there is no guess. */
    private static List<Early> open(CliEnvironment env, Target target) {
        KilnPaths paths = KilnPaths.from(env);
        AgentMixin named = new AgentMixin();
        named.agent = target.agent();
        named.serverName = target.serverName();
        AgentEndpoint endpoint = named.resolveDirect(ControllerSettings.load(env, paths), paths).orElse(null);
        if (endpoint == null) {
            return List.of();
        }
        ClientTls tls = ClientTls.of(paths);
        io.netty.handler.ssl.SslContext ssl = tls.sslContext();
        Early e;
        synchronized (EarlyConnect.class) {
            if (closed) {
                return List.of(); // the command has ended: no channel, no new event loops
            }
            e = new Early(endpoint, tls, AgentClient.channel(endpoint, ssl), new AtomicBoolean(), System.nanoTime());
            made.add(e);
        }
        e.channel().getState(true); // connect now, not at the first call
        return List.of(e);
    }

    /**
     * The early channel to this endpoint, once, when it was opened to exactly this endpoint with
     * exactly this TLS material and has not failed (a failed one is closed: a new channel reports
     * the failure as a command always did). Waits at most a second for the early thread.
     */
    public static Optional<ManagedChannel> claim(AgentEndpoint endpoint, ClientTls tls) {
        return claimEarly(endpoint, tls).map(Claimed::channel);
    }

    /** {@link #claim}, with when the channel began to connect. */
    public static Optional<Claimed> claimEarly(AgentEndpoint endpoint, ClientTls tls) {
        CompletableFuture<List<Early>> f;
        synchronized (EarlyConnect.class) {
            f = early;
        }
        if (f == null) {
            return Optional.empty();
        }
        List<Early> opened;
        try {
            opened = f.get(1, TimeUnit.SECONDS);
        } catch (InterruptedException ex) {
            Thread.currentThread().interrupt();
            return Optional.empty();
        } catch (Exception ex) {
            return Optional.empty();
        }
        Early e = opened.stream().filter(o -> o.endpoint().equals(endpoint) && o.tls().equals(tls)).findFirst().orElse(null);
        if (e == null || !e.taken().compareAndSet(false, true)) {
            return Optional.empty();
        }
        if (e.channel().getState(false) == ConnectivityState.TRANSIENT_FAILURE) {
            e.channel().shutdownNow();
            return Optional.empty();
        }
        return Optional.of(new Claimed(e.channel(), e.opened()));
    }

    /**
     * Closes the early channel unless a client claimed it (that client closes it), and keeps the
     * early thread from making one if it has not yet: called when the command has ended, before
     * the event loops stop.
     */
    public static void close() {
        List<Early> opened;
        synchronized (EarlyConnect.class) {
            closed = true;
            early = null;
            opened = made;
            made = new ArrayList<>();
        }
        for (Early e : opened) {
            if (e.taken().compareAndSet(false, true)) {
                e.channel().shutdownNow();
            }
        }
    }
}
