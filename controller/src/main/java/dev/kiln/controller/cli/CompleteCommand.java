package dev.kiln.controller.cli;

import dev.kiln.controller.KilnException;
import dev.kiln.controller.fleet.ManagedInstance;
import dev.kiln.controller.ssh.RsyncTransfer;
import dev.kiln.controller.ssh.SshTarget;
import jakarta.inject.Inject;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Parameters;

import java.util.List;

/**
 * {@code kiln __complete}: the words shell completion offers that only the fleet knows, one a
 * line: the ids of instances that are not terminated, or the profiles an instance's outputs hold.
 * A failure prints nothing (completion offers nothing, and says nothing).
 */
@Command(name = "__complete", hidden = true, description = "Words for shell completion: instances, or profiles [INSTANCE].")
public class CompleteCommand implements Runnable {

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

    @Parameters(index = "0", paramLabel = "WHAT", description = "instances or profiles")
    String what;

    @Parameters(index = "1", arity = "0..1", paramLabel = "INSTANCE", description = "profiles: whose (default: --agent, or the local agent)")
    String instance;

    @Override
    public void run() {
        try {
            if (what.equals("instances")) {
                for (ManagedInstance m : fleetOptions.fleet(fleets).list(List.of())) {
                    if (!m.state().equals("terminated")) {
                        context.out().println(m.id());
                    }
                }
            } else if (what.equals("profiles")) {
                SshTarget target = SshSupport.target(context, clients, fleets, agent, instance, "owner", () -> AgentClients.COMPLETION);
                PullCommand.profiles(new RsyncTransfer(target, context.err(), false), target).keySet()
                        .forEach(context.out()::println);
            }
        } catch (KilnException e) {
            // nothing to offer
        }
    }
}
