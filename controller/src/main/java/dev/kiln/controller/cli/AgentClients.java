package dev.kiln.controller.cli;

import dev.kiln.controller.KilnException;
import dev.kiln.controller.client.AgentClient;
import dev.kiln.controller.client.AgentEndpoint;
import dev.kiln.controller.client.ClientTls;
import io.grpc.StatusRuntimeException;
import io.netty.handler.ssl.SslContext;
import jakarta.inject.Singleton;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * The one way commands get a client to an agent, and how long they wait for agents where a flag
 * does not say.
 */
@Singleton
public class AgentClients {

    /** A request's timeout without --timeout, KILN_TIMEOUT or config.yml's timeout. */
    public static final String REQUEST = "10s";

    /** Each poll of a launched agent (and its enrollment) until it answers. */
    public static final Duration LAUNCH_POLL = Duration.ofSeconds(5);

    /** The Shutdown request of `kiln terminate`. */
    public static final Duration SHUTDOWN = Duration.ofSeconds(10);

    /** A request made while the shell completes a word: short, as someone waits at the prompt. */
    public static final Duration COMPLETION = Duration.ofSeconds(3);

    private final Context context;
    private final Fleets fleets;
    private volatile AgentClient last;
    private Object sslFor;
    private SslContext ssl;

    public AgentClients(Context context, Fleets fleets) {
        this.context = context;
        this.fleets = fleets;
    }

    /**
     * A client to the agent the mixin names, resolving it again on every call (a local agent
     * restarted by `kiln up --local` may listen on a new port).
     */
    public AgentClient connect(AgentMixin agent, Duration timeout) {
        return client(agent.resolve(fleets), timeout);
    }

    /**
     * A client to this agent: over the channel {@link EarlyConnect} opened to it, if it did (its
     * {@link AgentClient#contactDeadline()} then counts from that channel's opening).
     */
    public AgentClient client(AgentEndpoint endpoint, Duration timeout) {
        AgentClient client = EarlyConnect.claimEarly(endpoint, ClientTls.of(context.paths()))
                .map(early -> new AgentClient(endpoint, early.channel(), timeout, early.opened()))
                .orElseGet(() -> new AgentClient(endpoint, sslContext(), timeout));
        last = client;
        return client;
    }

    /**
     * A failed agent call that reached the command line as a message and an exit code, naming the
     * agent and deadline of the client this command opened last; empty when it opened none.
     */
    public Optional<KilnException> translate(StatusRuntimeException e) {
        return Optional.ofNullable(last).map(c -> c.translate(e));
    }

    /**
     * The client TLS context, built once per command and reused while the TLS files are unchanged:
     * a followed build that loses its connection reconnects with it, and each build of a context
     * reads and parses the PEM files again.
     */
    public synchronized SslContext sslContext() {
        ClientTls tls = ClientTls.of(context.paths());
        List<Object> key = new ArrayList<>();
        key.add(tls);
        for (Path p : List.of(tls.ca(), tls.cert(), tls.key())) {
            try {
                key.add(Files.getLastModifiedTime(p));
                key.add(Files.size(p));
            } catch (IOException e) {
                key.add(null); // unreadable: building the context reports it
            }
        }
        if (ssl == null || !key.equals(sslFor)) {
            ssl = tls.sslContext();
            sslFor = key;
        }
        return ssl;
    }
}
