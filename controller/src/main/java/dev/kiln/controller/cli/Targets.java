package dev.kiln.controller.cli;

import dev.kiln.controller.ExitCodes;
import dev.kiln.controller.KilnException;
import dev.kiln.controller.client.AgentEndpoint;
import dev.kiln.controller.fleet.Ec2Fleet;
import dev.kiln.controller.fleet.ManagedInstance;

import java.util.ArrayList;
import java.util.List;

/**
 * The agents a command acts on: one EC2 instance by id, every running managed instance
 * ({@code --all}), or the agent from {@code --agent} / KILN_AGENT / the local agent.
 */
final class Targets {

    /** One agent to act on, with a name for the output. */
    record Target(String name, AgentEndpoint endpoint) {
    }

    private Targets() {
    }

    static List<Target> resolve(Context context, AgentMixin agent, FleetMixin fleetOptions, String instance, boolean all) {
        if (all && instance != null) {
            throw new KilnException(ExitCodes.USAGE, "give an INSTANCE or --all, not both");
        }
        if (instance == null && !all) {
            AgentEndpoint e = agent.resolve(context.settings(), context.paths());
            return List.of(new Target(e.toString(), e));
        }
        Ec2Fleet fleet = fleetOptions.fleet(context);
        List<ManagedInstance> instances = all ? fleet.active() : List.of(fleet.get(instance));
        List<Target> out = new ArrayList<>();
        for (ManagedInstance m : instances) {
            AgentEndpoint e = fleetOptions.endpoint(context, m);
            if (e == null) {
                throw new KilnException(ExitCodes.UNREACHABLE, m.id() + " has no usable address (see --address)");
            }
            out.add(new Target(m.id(), e));
        }
        if (out.isEmpty()) {
            context.err().println("kiln: no managed instances are running");
        }
        return out;
    }
}
