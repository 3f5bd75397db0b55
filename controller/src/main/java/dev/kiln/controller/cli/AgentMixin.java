package dev.kiln.controller.cli;

import dev.kiln.controller.ExitCodes;
import dev.kiln.controller.KilnException;
import dev.kiln.controller.client.AgentEndpoint;
import dev.kiln.controller.config.ControllerSettings;
import dev.kiln.controller.config.KilnPaths;
import dev.kiln.controller.fleet.Ec2Fleet;
import dev.kiln.controller.fleet.ManagedInstance;
import dev.kiln.controller.local.LocalAgent;
import dev.kiln.controller.local.LocalProvider;
import picocli.CommandLine.Option;

/** {@code --agent HOST:PORT} and {@code --tls-server-name}, shared by commands that talk to one agent. */
public class AgentMixin {

    @Option(names = "--agent", paramLabel = "HOST:PORT|INSTANCE",
            description = "The agent to talk to: HOST:PORT, or a managed instance's id (i-... or local-...) (default: the local agent from `kiln up --local`; env KILN_AGENT).")
    String agent;

    @Option(names = "--tls-server-name", paramLabel = "NAME",
            description = "Name to verify the agent's certificate against (default: the HOST of --agent).")
    String serverName;

    /** An EC2 (i-...) or local provider (local-...) instance id. */
    static boolean isInstanceId(String s) {
        return Ec2Fleet.isInstanceId(s) || LocalProvider.isInstanceId(s);
    }

    /** Where a managed instance's agent listens, by the address rule (--address / KILN_ADDRESS / config). */
    static AgentEndpoint instanceEndpoint(Fleets fleets, String instanceId) {
        dev.kiln.controller.fleet.Fleet fleet = fleets.owning(instanceId);
        ManagedInstance m = fleet.get(instanceId);
        if (m.state().equals("terminated")) {
            throw new KilnException(ExitCodes.NOT_FOUND, fleet.ended(instanceId).map(dev.kiln.controller.fleet.EndedInstance::summary)
                    .orElse(instanceId + " is terminated") + "; nothing runs there any more (`kiln ls --all` lists ended"
                    + " instances; `kiln launch` starts a new one)");
        }
        String rule = fleets.context().settings().get("address", null).orElse("auto");
        AgentEndpoint e = m.endpoint(rule);
        if (e == null) {
            throw new KilnException(ExitCodes.UNREACHABLE, m.id() + " has no " + rule + " address (it is " + m.state()
                    + "); use --address private (through a VPN or bastion) or give it a public IP");
        }
        return e;
    }

    /** The local instance id (local-...) the agent was named by, if it was named by one. */
    java.util.Optional<String> localInstanceId(ControllerSettings settings) {
        return settings.get("agent", agent).filter(LocalProvider::isInstanceId);
    }

    /** The agent to talk to: flag &gt; KILN_AGENT &gt; config.yml &gt; the running local agent. */
    public AgentEndpoint resolve(Fleets fleets) {
        KilnPaths paths = fleets.context().paths();
        String given = fleets.context().settings().get("agent", agent).orElse(null);
        if (given != null && isInstanceId(given)) {
            AgentEndpoint e = instanceEndpoint(fleets, given);
            return serverName == null ? e : e.withServerName(serverName);
        }
        return direct(given, paths).orElseThrow(() -> new KilnException(ExitCodes.CONFIG,
                "no agent given and no local agent started; pass --agent HOST:PORT or run `kiln up --local`"));
    }

    /**
     * As {@link #resolve}, without looking anything up in the fleet: empty for an instance id, and
     * when nothing names an agent ({@link EarlyConnect}'s guess).
     */
    java.util.Optional<AgentEndpoint> resolveDirect(ControllerSettings settings, KilnPaths paths) {
        String given = settings.get("agent", agent).orElse(null);
        return given != null && isInstanceId(given) ? java.util.Optional.empty() : direct(given, paths);
    }

    /** HOST:PORT as given, else the local agent's endpoint; with --tls-server-name applied. */
    private java.util.Optional<AgentEndpoint> direct(String given, KilnPaths paths) {
        java.util.Optional<AgentEndpoint> endpoint = java.util.Optional.ofNullable(given).map(AgentEndpoint::parse)
                .or(() -> new LocalAgent(paths).endpoint());
        return serverName == null ? endpoint : endpoint.map(e -> e.withServerName(serverName));
    }
}
