package dev.kiln.controller.cli;

import dev.kiln.proto.agent.v1.ShutdownRequest;
import dev.kiln.proto.agent.v1.ShutdownResponse;
import jakarta.inject.Inject;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.util.List;
import java.util.concurrent.Callable;

/** {@code kiln stop}: end agents' instances now, gracefully. */
@Command(name = "stop", mixinStandardHelpOptions = true,
        description = {"End the instance now, gracefully: the agent refuses new builds, cancels running ones, flushes",
                "logs, closes SSH sessions, unmounts volumes and powers off (a local agent's process ends).",
                "Acts on INSTANCE, on every running managed instance (--all), or on --agent / the local agent.",
                "Follow it with `kiln logs -f agent`. Safe to repeat."})
public class StopCommand implements Callable<Integer> {

    @Inject
    Context context;

    @Inject
    Fleets fleets;

    @Inject
    AgentClients clients;

    @Mixin
    AgentMixin agent;

    @Mixin
    FleetMixin fleetOptions;

    @Parameters(arity = "0..1", paramLabel = "INSTANCE", description = "An instance id: local-... on the local provider, i-... on EC2.")
    String instance;

    @Option(names = "--all", description = "Every running managed instance (of the provider).")
    boolean all;

    @Option(names = "--reason", paramLabel = "TEXT", description = "Why, for the agent's log.")
    String reason;

    @Mixin
    TimeoutMixin timeout;

    @Override
    public Integer call() {
        List<Targets.Target> targets = Targets.resolve(context, fleets, agent, fleetOptions, instance, all);
        return Targets.each(context, clients, targets, timeout.get(context), (t, client) -> {
            ShutdownResponse r = client.stub().shutdown(ShutdownRequest.newBuilder()
                    .setReason(reason == null ? "kiln stop" : reason).build());
            context.err().println("kiln: " + t.name() + " is draining since " + StatusCommand.time(r.getDrainingSince())
                    + "; follow it with `kiln logs -f agent`");
        });
    }
}
