package dev.kiln.controller.cli;

import dev.kiln.controller.build.LogFollower;
import jakarta.inject.Inject;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.io.IOException;
import java.util.concurrent.Callable;

/** {@code kiln logs}: print (and follow) a build's log, or the agent's own. */
@Command(name = "logs", mixinStandardHelpOptions = true,
        description = {"Print a build's log (or the agent's own, with BUILD = agent) byte for byte.",
                "With -f, follow it until the build ends, reconnecting and resuming from the last byte",
                "received if the connection drops or the agent restarts; exit with the build's status."})
public class LogsCommand implements Callable<Integer> {

    @Inject
    Context context;

    @Mixin
    AgentMixin agent;

    @Parameters(index = "0", paramLabel = "BUILD", description = "A build id (see `kiln builds`), or `agent`.")
    String build;

    @Option(names = {"-f", "--follow"}, description = "Follow until the build ends.")
    boolean follow;

    @Option(names = "--from", paramLabel = "OFFSET", defaultValue = "0",
            description = "Start at this byte offset (to resume an earlier copy).")
    long from;

    @Option(names = "--timeout", paramLabel = "DURATION", description = "Timeout of each request (default: 10s).")
    String timeout;

    @Override
    public Integer call() throws IOException {
        if (follow && !build.equals("agent")) {
            return BuildCommand.follow(context, agent, build, from, timeout);
        }
        new LogFollower(() -> context.connect(agent, context.timeout(timeout)), m -> context.err().println("kiln: " + m),
                Durations.parse("5m"), from).copy(build, follow, context.out());
        return 0;
    }
}
