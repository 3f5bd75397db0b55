package dev.kiln.controller.cli;

import dev.kiln.controller.ExitCodes;
import dev.kiln.controller.KilnException;
import dev.kiln.controller.client.AgentEndpoint;
import dev.kiln.controller.fleet.Fleet;
import dev.kiln.controller.fleet.ManagedInstance;

import java.util.ArrayList;
import java.util.List;

/**
 * The agents a command acts on: one managed instance by id (EC2 or local), every running managed instance
 * ({@code --all}), or the agent from {@code --agent} / KILN_AGENT / the local agent.
 */
final class Targets {

    /** One agent to act on, with a name for the output. */
    record Target(String name, AgentEndpoint endpoint) {
    }

    /** What to ask one agent; failures come back as StatusRuntimeException or KilnException. */
    @FunctionalInterface
    interface Action {
        void apply(Target target, dev.kiln.controller.client.AgentClient client);
    }

    private Targets() {
    }

    /**
     * Runs {@code action} on each target in turn. With one target a failure is the command's
     * failure; with several, it is reported and the others are still asked, and the exit code is
     * the last failure's.
     */
    static int each(Context context, AgentClients clients, List<Target> targets, java.time.Duration timeout, Action action) {
        int exit = ExitCodes.OK;
        for (Target t : targets) {
            KilnException failure;
            try (var client = clients.client(t.endpoint(), timeout)) {
                try {
                    action.apply(t, client);
                    continue;
                } catch (io.grpc.StatusRuntimeException e) {
                    failure = client.translate(e);
                }
            } catch (KilnException k) {
                failure = k;
            }
            if (targets.size() == 1) {
                throw failure;
            }
            context.err().println("kiln: " + t.name() + ": " + failure.getMessage());
            exit = failure.exitCode();
        }
        return exit;
    }

    static List<Target> resolve(Context context, Fleets fleets, AgentMixin agent, FleetMixin fleetOptions, String instance, boolean all) {
        if (all && instance != null) {
            throw new KilnException(ExitCodes.USAGE, "give an INSTANCE or --all, not both");
        }
        if (instance == null && !all) {
            AgentEndpoint e = agent.resolve(fleets);
            return List.of(new Target(e.toString(), e));
        }
        Fleet fleet = fleetOptions.fleet(fleets, instance);
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
