package dev.kiln.controller.cli;

import dev.kiln.controller.client.AgentClient;
import dev.kiln.controller.client.GrpcErrors;
import dev.kiln.proto.agent.v1.ShutdownRequest;
import dev.kiln.proto.agent.v1.ShutdownResponse;
import io.grpc.StatusRuntimeException;
import jakarta.inject.Inject;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** {@code kiln stop}: end an agent's instance now, gracefully. */
@Command(name = "stop", mixinStandardHelpOptions = true,
        description = {"End the agent's instance now, gracefully: it refuses new builds, cancels running ones,",
                "flushes logs, closes SSH sessions, unmounts volumes and powers off (a local agent's process ends).",
                "Follow it with `kiln logs -f agent`. Safe to repeat."})
public class StopCommand implements Runnable {

    @Inject
    Context context;

    @Mixin
    AgentMixin agent;

    @Option(names = "--reason", paramLabel = "TEXT", description = "Why, for the agent's log.")
    String reason;

    @Option(names = "--timeout", paramLabel = "DURATION", description = "Request timeout (default: 10s).")
    String timeout;

    @Override
    public void run() {
        ShutdownResponse r;
        try (AgentClient client = context.connect(agent, context.timeout(timeout))) {
            try {
                r = client.stub().shutdown(ShutdownRequest.newBuilder()
                        .setReason(reason == null ? "kiln stop" : reason).build());
            } catch (StatusRuntimeException e) {
                throw GrpcErrors.translate(e, client.endpoint());
            }
            context.err().println("kiln: agent " + client.endpoint() + " is draining since "
                    + StatusCommand.time(r.getDrainingSince()) + "; follow it with `kiln logs -f agent`");
        }
    }
}
