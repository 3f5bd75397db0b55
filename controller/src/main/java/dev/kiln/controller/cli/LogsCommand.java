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
        description = {"Print a build's log (or the agent's own, with BUILD = agent; the boot script's, with boot; a",
                "service's, with service:NAME) byte for byte. With -f, follow it until the build ends, reconnecting and",
                "resuming from the last byte received if the connection drops or the agent restarts; exit with the",
                "build's status (the boot script's too; a service's log is followed until the service stops)."})
public class LogsCommand implements Callable<Integer> {

    @Inject
    Context context;

    @Inject
    Fleets fleets;

    @Inject
    AgentClients clients;

    @Mixin
    AgentMixin agent;

    @Parameters(index = "0", paramLabel = "BUILD", description = "A build id (see `kiln builds`), `agent`, `boot` or `service:NAME`.")
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
        if (build.equals("boot") || build.startsWith("service:")) {
            return bootOrService();
        }
        if (follow && !build.equals("agent")) {
            return BuildCommand.follow(context, clients, agent, build, from, timeout);
        }
        new LogFollower(() -> clients.connect(agent, timeout.get(context)), m -> context.err().println("kiln: " + m),
                Durations.parse("5m"), from).copy(build, follow, context.out());
        return 0;
    }

    /**
     * The boot script's log ({@code boot}) or a service's ({@code service:NAME}): no progress to
     * show; following resumes by offset like a build's, and ends with the boot script (exit
     * status as a build's) or when the service is stopped for good.
     */
    private int bootOrService() throws IOException {
        if (build.startsWith("service:") && !build.substring("service:".length()).matches("[a-z0-9][a-z0-9-]{0,30}")) {
            throw new dev.kiln.controller.KilnException(dev.kiln.controller.ExitCodes.USAGE, "'" + build + "' is not service:NAME"
                    + " with a service's name such as service:web (`kiln status` lists the services)");
        }
        dev.kiln.proto.agent.v1.Build end = new LogFollower(() -> clients.connect(agent, timeout.get(context)),
                m -> context.err().println("kiln: " + m), Durations.parse("5m"), from).copy(build, follow, context.out());
        if (!follow || end == null || !build.equals("boot")) {
            return 0;
        }
        context.err().println("kiln: boot script " + BuildCommand.state(end) + (end.getHasExitCode() ? " (exit "
                + end.getExitCode() + ")" : ""));
        return dev.kiln.controller.build.BuildExit.of(end);
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
