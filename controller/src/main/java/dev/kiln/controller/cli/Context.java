package dev.kiln.controller.cli;

import dev.kiln.controller.config.CliEnvironment;
import dev.kiln.controller.config.ControllerSettings;
import dev.kiln.controller.config.KilnPaths;
import jakarta.inject.Singleton;

import java.io.PrintStream;
import java.time.Clock;

/** What every command needs: paths, settings, output streams, a clock. */
@Singleton
public class Context {

    private final CliEnvironment env;
    private final KilnPaths paths;
    private ControllerSettings settings;

    public Context(CliEnvironment env) {
        this.env = env;
        this.paths = KilnPaths.from(env);
    }

    public CliEnvironment env() {
        return env;
    }

    public KilnPaths paths() {
        return paths;
    }

    /** Settings, loaded on first use (so `kiln init` works with a broken config file). */
    public synchronized ControllerSettings settings() {
        if (settings == null) {
            settings = ControllerSettings.load(env, paths).withOverrides(overrides);
        }
        return settings;
    }

    private final java.util.Map<String, String> overrides = new java.util.HashMap<>();

    /** A setting given by a command's own flag, which beats everything else. */
    public synchronized void overrideSetting(String key, String value) {
        overrides.put(key, value);
        settings = null;
    }

    /** Data. */
    public PrintStream out() {
        return env.out();
    }

    /** Narration, progress and errors. */
    public PrintStream err() {
        return env.err();
    }

    /** True when stderr is an interactive terminal (progress bars), false when piped or in tests. */
    public boolean terminal() {
        return System.console() != null && env.err() == System.err;
    }

    /**
     * Opens a client to the agent the mixin names, resolving it again on every call (a local
     * agent restarted by `kiln up --local` may listen on a new port).
     */
    public dev.kiln.controller.client.AgentClient connect(AgentMixin agent, java.time.Duration timeout) {
        return client(agent.resolve(settings(), paths), timeout);
    }

    /** A client to this agent: over the channel {@link EarlyConnect} opened to it, if it did. */
    public dev.kiln.controller.client.AgentClient client(dev.kiln.controller.client.AgentEndpoint endpoint,
                                                         java.time.Duration timeout) {
        dev.kiln.controller.client.AgentClient client = EarlyConnect.claim(endpoint, dev.kiln.controller.client.ClientTls.of(paths))
                .map(channel -> new dev.kiln.controller.client.AgentClient(endpoint, channel, timeout))
                .orElseGet(() -> new dev.kiln.controller.client.AgentClient(endpoint, sslContext(), timeout));
        lastClient = client;
        return client;
    }

    private volatile dev.kiln.controller.client.AgentClient lastClient;

    /**
     * A failed agent call that reached the command line as a message and an exit code, naming the
     * agent and deadline of the client this command opened last; empty when it opened none.
     */
    public java.util.Optional<dev.kiln.controller.KilnException> translate(io.grpc.StatusRuntimeException e) {
        return java.util.Optional.ofNullable(lastClient).map(c -> c.translate(e));
    }

    private Object sslFor;
    private io.netty.handler.ssl.SslContext ssl;

    /**
     * The client TLS context, built once per command and reused while the TLS files are unchanged:
     * a followed build that loses its connection reconnects with it, and each build of a context
     * reads and parses the PEM files again.
     */
    private synchronized io.netty.handler.ssl.SslContext sslContext() {
        dev.kiln.controller.client.ClientTls tls = dev.kiln.controller.client.ClientTls.of(paths);
        java.util.List<Object> key = new java.util.ArrayList<>();
        key.add(tls);
        for (java.nio.file.Path p : java.util.List.of(tls.ca(), tls.cert(), tls.key())) {
            try {
                key.add(java.nio.file.Files.getLastModifiedTime(p));
                key.add(java.nio.file.Files.size(p));
            } catch (java.io.IOException e) {
                key.add(null); // unreadable: building the context reports it
            }
        }
        if (ssl == null || !key.equals(sslFor)) {
            ssl = tls.sslContext();
            sslFor = key;
        }
        return ssl;
    }

    /** The request timeout: --timeout, KILN_TIMEOUT, config.yml, or 10s. */
    public java.time.Duration timeout(String flag) {
        return Durations.parse(settings().get("timeout", flag).orElse(AgentTimeouts.REQUEST));
    }

    public Clock clock() {
        return Clock.systemUTC();
    }
}
