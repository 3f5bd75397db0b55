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
@TimeoutMixin.Default(what = "Timeout of each request")
@Command(name = "logs", mixinStandardHelpOptions = true,
        description = {"Print a build's log (or the agent's own, with BUILD = agent) byte for byte.",
                "With -f, follow it until the build ends, reconnecting and resuming from the last byte",
                "received if the connection drops or the agent restarts; exit with the build's status."})
public class LogsCommand implements Callable<Integer> {

    @Inject
    Context context;

    @Inject
    Fleets fleets;

    @Inject
    AgentClients clients;

    @Mixin
    AgentMixin agent;

    @Parameters(index = "0", paramLabel = "BUILD", description = "A build id (see `kiln builds`), or `agent`.")
    String build;

    @Option(names = {"-f", "--follow"}, description = "Follow until the build ends.")
    boolean follow;

    @Option(names = "--from", paramLabel = "OFFSET", defaultValue = "0",
            description = "Start at this byte offset (to resume an earlier copy).")
    long from;

    @Mixin
    TimeoutMixin timeout;

    @Override
    public Integer call() throws IOException {
        java.util.Optional<String> local = agent.localInstanceId(context.settings());
        if (local.isPresent()) {
            dev.kiln.controller.local.LocalProvider fleet = fleets.local();
            java.util.Optional<dev.kiln.controller.fleet.EndedInstance> ended = fleet.ended(local.get());
            if (ended.isPresent()) {
                return fromRecord(fleet, ended.get());
            }
        }
        if (follow && !build.equals("agent")) {
            return BuildCommand.follow(context, clients, agent, build, from, timeout);
        }
        new LogFollower(() -> clients.connect(agent, timeout.get(context)), m -> context.err().println("kiln: " + m),
                Durations.parse("5m"), from).copy(build, follow, context.out());
        return 0;
    }

    /** An ended local instance's log, from the copy its record keeps for {@code KEEP_LOGS}. */
    private int fromRecord(dev.kiln.controller.local.LocalProvider fleet, dev.kiln.controller.fleet.EndedInstance ended)
            throws IOException {
        java.util.Optional<java.nio.file.Path> log = fleet.endedLog(ended.id(), build);
        if (log.isEmpty()) {
            String kept = ended.logs() == null
                    ? "its logs were dropped " + dev.kiln.controller.local.LocalProvider.KEEP_LOGS.toDays() + " days after it ended"
                    : "its record keeps the logs of: agent" + keptBuilds(java.nio.file.Path.of(ended.logs()));
            throw new dev.kiln.controller.KilnException(dev.kiln.controller.ExitCodes.NOT_FOUND, ended.summary()
                    + "; no log of " + build + " was kept (" + kept + ")");
        }
        context.err().println("kiln: " + ended.summary() + "; this is the copy of its log that the fleet keeps until "
                + ended.ended().plus(dev.kiln.controller.local.LocalProvider.KEEP_LOGS) + ": " + log.get());
        try (java.io.InputStream in = java.nio.file.Files.newInputStream(log.get())) {
            in.skipNBytes(Math.min(from, java.nio.file.Files.size(log.get())));
            in.transferTo(context.out());
        }
        context.out().flush();
        return 0;
    }

    private static String keptBuilds(java.nio.file.Path logs) throws IOException {
        java.nio.file.Path builds = logs.resolve("builds");
        if (!java.nio.file.Files.isDirectory(builds)) {
            return "";
        }
        try (java.util.stream.Stream<java.nio.file.Path> all = java.nio.file.Files.list(builds)) {
            return all.map(p -> ", " + p.getFileName()).sorted().reduce("", String::concat);
        }
    }
}
