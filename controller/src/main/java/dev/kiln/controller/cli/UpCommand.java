package dev.kiln.controller.cli;

import dev.kiln.controller.ExitCodes;
import dev.kiln.controller.KilnException;
import dev.kiln.controller.client.ClientTls;
import dev.kiln.controller.local.AgentJar;
import dev.kiln.controller.local.LocalAgent;
import dev.kiln.controller.pki.FleetInit;
import jakarta.inject.Inject;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code kiln up --local}: start a local kiln-agent in the background. */
@Command(name = "up", mixinStandardHelpOptions = true,
        description = {"Start a kiln-agent in local mode as a background process on a loopback port,",
                "with a certificate from the fleet CA (runs `kiln init` first if needed).",
                "Its pid file, log and state live in ~/.local/state/kiln/local-agent.",
                "The agent's JVM options are the systemd unit's, or $AGENT_JAVA_OPTS when set."})
public class UpCommand implements Runnable {

    @Inject
    Context context;

    @Inject
    Fleets fleets;

    @Option(names = "--local", description = "Start a local agent (the only kind `up` starts; EC2 instances come from `kiln launch`).")
    boolean local;

    @Option(names = "--port", paramLabel = "PORT", defaultValue = "0",
            description = "Loopback port for the agent's gRPC server (default: a free port).")
    int port;

    @Option(names = "--ttl", paramLabel = "DURATION", description = "End the agent this long after it starts (default: no deadline).")
    String ttl;

    @Option(names = "--max-lifetime", paramLabel = "DURATION", description = "Cap of `kiln extend` (default: 12h).")
    String maxLifetime;

    @Option(names = "--idle-timeout", paramLabel = "DURATION", description = "End the agent after this long with nothing to do.")
    String idleTimeout;

    @Option(names = "--serve", paramLabel = "DIR",
            description = "Serve DIR read-only as /outputs over the agent's SSH server (default: an empty directory of the agent's).")
    java.nio.file.Path serve;

    @Option(names = "--sources", paramLabel = "DIR",
            description = "The directory the owner may upload into as /sources (default: the agent's own sources directory).")
    java.nio.file.Path sources;

    @Option(names = "--ssh-port", paramLabel = "PORT", defaultValue = "2222",
            description = "Loopback port of the agent's SSH server (default: ${DEFAULT-VALUE}, or a free one when taken; 0: a free one).")
    int sshPort;

    @Option(names = "--wait", paramLabel = "DURATION", defaultValue = "60s",
            description = "How long to wait for the agent to answer (default: ${DEFAULT-VALUE}).")
    String wait;

    @Override
    public void run() {
        if (!local) {
            throw new KilnException(ExitCodes.USAGE, "`kiln up` needs --local (it starts a local agent; EC2 instances are launched with `kiln launch`)");
        }
        FleetInit init = new FleetInit(context.paths(), context.clock());
        if (!init.initialised()) {
            context.err().println("kiln: no fleet CA yet; initialising " + context.paths().configDir());
            init.run(false, FleetInit.defaultIdentity());
        }
        LocalAgent agent = fleets.localAgent().javaOptions(context.env().get("AGENT_JAVA_OPTS"))
                .classArchive(context.env().get("KILN_NO_CDS").filter(v -> !v.isEmpty()).isEmpty());
        java.util.Map<String, String> lease = new java.util.LinkedHashMap<>();
        if (ttl != null) {
            lease.put("ttl", Durations.parse(ttl).getSeconds() + "s");
        }
        if (maxLifetime != null) {
            lease.put("max-lifetime", Durations.parse(maxLifetime).getSeconds() + "s");
        }
        if (idleTimeout != null) {
            lease.put("idle-timeout", Durations.parse(idleTimeout).getSeconds() + "s");
        }
        LocalAgent.Running running = agent.up(init.loadCa(), ClientTls.of(context.paths()),
                AgentJar.locate(context.env()), port,
                new LocalAgent.Serve(serve, sources, sshPort), Durations.parse(wait), lease, m -> context.err().println("kiln: " + m));
        new Table("AGENT", "PID", "LOG").row(running.endpoint().toString(), Long.toString(running.pid()),
                agent.logFile().toString()).print(context.out());
        context.err().println("kiln: local agent is up; try `kiln status`");
    }
}
