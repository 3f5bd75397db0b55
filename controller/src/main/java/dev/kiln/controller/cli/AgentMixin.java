package dev.kiln.controller.cli;

import dev.kiln.controller.ExitCodes;
import dev.kiln.controller.KilnException;
import dev.kiln.controller.client.AgentEndpoint;
import dev.kiln.controller.config.ControllerSettings;
import dev.kiln.controller.config.KilnPaths;
import dev.kiln.controller.local.LocalAgent;
import picocli.CommandLine.Option;

/** {@code --agent HOST:PORT} and {@code --tls-server-name}, shared by commands that talk to one agent. */
public class AgentMixin {

    @Option(names = "--agent", paramLabel = "HOST:PORT",
            description = "The agent to talk to (default: the local agent from `kiln up --local`; env KILN_AGENT).")
    String agent;

    @Option(names = "--tls-server-name", paramLabel = "NAME",
            description = "Name to verify the agent's certificate against (default: the HOST of --agent).")
    String serverName;

    /** The agent to talk to: flag &gt; KILN_AGENT &gt; config.yml &gt; the running local agent. */
    public AgentEndpoint resolve(ControllerSettings settings, KilnPaths paths) {
        AgentEndpoint endpoint = settings.get("agent", agent).map(AgentEndpoint::parse)
                .or(() -> new LocalAgent(paths).endpoint())
                .orElseThrow(() -> new KilnException(ExitCodes.CONFIG,
                        "no agent given and no local agent started; pass --agent HOST:PORT or run `kiln up --local`"));
        return serverName == null ? endpoint : endpoint.withServerName(serverName);
    }
}
