package dev.kiln.controller.cli;

import dev.kiln.controller.client.AgentClient;
import dev.kiln.proto.agent.v1.Build;
import dev.kiln.proto.agent.v1.CancelBuildRequest;
import jakarta.inject.Inject;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.time.Duration;

/** {@code kiln cancel}: cancel a build. */
@TimeoutMixin.Default(value = "60s", settings = false)
@Command(name = "cancel", mixinStandardHelpOptions = true,
        description = "Cancel a build: TERM to its process group, KILL after the grace period. A finished build is left as it is.")
public class CancelCommand implements Runnable {

    @Inject
    Context context;

    @Inject
    AgentClients clients;

    @Mixin
    AgentMixin agent;

    @Parameters(index = "0", paramLabel = "BUILD", description = "The build id.")
    String build;

    @Option(names = "--grace", paramLabel = "DURATION", description = "Time between TERM and KILL (default: the agent's, 10s).")
    String grace;

    @Mixin
    TimeoutMixin timeout;

    @Override
    public void run() {
        Duration g = grace == null ? Duration.ZERO : Durations.parse(grace);
        Build b;
        try (AgentClient client = clients.connect(agent, timeout.get(context))) {
            b = client.stub().cancelBuild(CancelBuildRequest.newBuilder().setId(build)
                    .setGrace(com.google.protobuf.Duration.newBuilder().setSeconds(g.getSeconds()).setNanos(g.getNano()))
                    .build());
        }
        context.out().println(b.getId() + " " + BuildCommand.state(b));
    }
}
