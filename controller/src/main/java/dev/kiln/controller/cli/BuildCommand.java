package dev.kiln.controller.cli;

import dev.kiln.controller.ExitCodes;
import dev.kiln.controller.KilnException;
import dev.kiln.controller.build.BuildExit;
import dev.kiln.controller.build.LogFollower;
import dev.kiln.controller.build.ProgressDisplay;
import dev.kiln.controller.client.AgentClient;
import dev.kiln.proto.agent.v1.Build;
import dev.kiln.proto.agent.v1.CommandBuild;
import dev.kiln.proto.agent.v1.GetBuildRequest;
import dev.kiln.proto.agent.v1.Profile;
import dev.kiln.proto.agent.v1.StartBuildRequest;
import dev.kiln.proto.agent.v1.TupBuild;
import jakarta.inject.Inject;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.UUID;
import java.util.concurrent.Callable;

/** {@code kiln build}: start a tup build (or a command) on an agent and follow its log. */
@TimeoutMixin.Default(what = "Timeout of each request")
@Command(name = "build", mixinStandardHelpOptions = true,
        description = {"Start a build in WORK_TREE on the agent and follow its log until it ends.",
                "Without COMMAND: tup, for all profiles or those named with --profile.",
                "With `-- COMMAND [ARGS...]`: that command, no shell.",
                "Exits with the build's exit status (130 cancelled, 75 interrupted by an agent restart)."})
public class BuildCommand implements Callable<Integer> {

    @Inject
    Context context;

    @Inject
    Fleets fleets;

    @Inject
    AgentClients clients;

    @Mixin
    AgentMixin agent;

    @Parameters(index = "0", paramLabel = "WORK_TREE",
            description = "The work tree on the agent: an absolute path, or with --agent INSTANCE a path in that instance's work tree (e.g. vibes).")
    String workTree;

    @Parameters(index = "1..*", paramLabel = "COMMAND", description = "A command to run instead of tup (after --).")
    List<String> command = new ArrayList<>();

    @Option(names = {"-p", "--profile"}, paramLabel = "NAME", description = "Build only this profile (repeatable).")
    List<String> profiles = new ArrayList<>();

    @Option(names = "--profiles-dir", paramLabel = "DIR",
            description = "Send the profile definitions in DIR/*.config (tup.config contents) with the build.")
    Path profilesDir;

    @Option(names = {"-e", "--env"}, paramLabel = "NAME=VALUE", description = "Environment for a command build (repeatable).")
    Map<String, String> env = new TreeMap<>();

    @Option(names = "--queue", description = "Wait behind a build already running in the work tree instead of failing.")
    boolean queue;

    @Option(names = {"-d", "--detach"}, description = "Start the build and print its id; do not follow.")
    boolean detach;

    @Option(names = "--label", paramLabel = "KEY=VALUE", description = "Label the build (repeatable).")
    Map<String, String> labels = new TreeMap<>();

    @Mixin
    TimeoutMixin timeout;

    @Override
    public Integer call() throws IOException {
        if (!workTree.startsWith("/")) {
            String instance = context.settings().get("agent", agent.agent).orElse(null);
            if (instance == null || !AgentMixin.isInstanceId(instance)) {
                throw new KilnException(ExitCodes.USAGE, "WORK_TREE '" + workTree + "' is relative; give an absolute path on the"
                        + " agent, or --agent INSTANCE to build in that instance's work tree");
            }
            String root = fleets.owning(instance).workTree(instance);
            if (root == null) {
                throw new KilnException(ExitCodes.USAGE, instance + " has no volumes, so no work tree; give an absolute WORK_TREE");
            }
            workTree = root + "/" + workTree;
        }
        StartBuildRequest.Builder request = StartBuildRequest.newBuilder()
                .setWorkTree(workTree).setQueue(queue).setRequestId(UUID.randomUUID().toString()).putAllLabels(labels);
        if (command.isEmpty()) {
            TupBuild.Builder tup = TupBuild.newBuilder().addAllProfiles(profiles);
            readProfiles().forEach(tup::addProfileDefinitions);
            request.setTup(tup);
        } else {
            if (!profiles.isEmpty() || profilesDir != null) {
                throw new KilnException(ExitCodes.USAGE, "--profile and --profiles-dir apply to tup builds, not to a command");
            }
            request.setCommand(CommandBuild.newBuilder().addAllArgv(command).putAllEnv(env));
        }
        // One connection (one TLS handshake) for the start, the progress polls and the log: a
        // fresh JVM pays a tenth of a second or more of CPU per handshake.
        try (AgentClient client = clients.connect(agent, timeout.get(context))) {
            Build build;
            build = client.stub().startBuild(request.build());
            context.err().println("kiln: build " + build.getId() + " " + state(build) + " in " + workTree);
            if (detach) {
                context.out().println(build.getId());
                return ExitCodes.OK;
            }
            return follow(context, clients, agent, build.getId(), 0, timeout, client);
        }
    }

    /** Follows a build's log to stdout with a progress display; returns the build's exit status. */
    static int follow(Context context, AgentClients clients, AgentMixin agent, String id, long from, TimeoutMixin timeout) throws IOException {
        try (AgentClient client = clients.connect(agent, timeout.get(context))) {
            return follow(context, clients, agent, id, from, timeout, client);
        }
    }

    /**
     * {@link #follow(Context, AgentClients, AgentMixin, String, long, TimeoutMixin)} over a connection the caller has
     * (new ones only after it is lost).
     */
    static int follow(Context context, AgentClients clients, AgentMixin agent, String id, long from, TimeoutMixin timeout, AgentClient client)
            throws IOException {
        Build end;
        try (ProgressDisplay progress = new ProgressDisplay(context.err(), context.terminal(),
                () -> client.stub().getBuild(GetBuildRequest.newBuilder().setId(id).build())).start()) {
            LogFollower follower = new LogFollower(() -> clients.connect(agent, timeout.get(context)),
                    m -> context.err().println("kiln: " + m), Durations.parse("5m"), from).startingWith(client);
            end = follower.copy(id, true, context.out());
        }
        if (end == null) {
            return ExitCodes.OK;
        }
        context.err().println("kiln: build " + id + " " + state(end)
                + (end.getHasExitCode() ? " (exit " + end.getExitCode() + ")" : ""));
        return BuildExit.of(end);
    }

    static String state(Build b) {
        return b.getState().name().replace("BUILD_STATE_", "").toLowerCase(java.util.Locale.ROOT);
    }

    private List<Profile> readProfiles() throws IOException {
        List<Profile> out = new ArrayList<>();
        if (profilesDir == null) {
            return out;
        }
        if (!Files.isDirectory(profilesDir)) {
            throw new KilnException(ExitCodes.USAGE, "--profiles-dir " + profilesDir + " is not a directory");
        }
        try (var files = Files.list(profilesDir)) {
            for (Path f : files.filter(p -> p.getFileName().toString().endsWith(".config")).sorted().toList()) {
                Profile.Builder p = Profile.newBuilder().setName(f.getFileName().toString().replaceFirst("\\.config$", ""));
                for (String line : Files.readAllLines(f, StandardCharsets.UTF_8)) {
                    String l = line.strip();
                    if (l.isEmpty() || l.startsWith("#")) {
                        continue;
                    }
                    int eq = l.indexOf('=');
                    if (eq < 1) {
                        throw new KilnException(ExitCodes.USAGE, f + ": '" + l + "' is not a CONFIG_KEY=value line");
                    }
                    p.putConfig(l.substring(0, eq).strip().replaceFirst("^CONFIG_", ""), l.substring(eq + 1).strip());
                }
                out.add(p.build());
            }
        }
        if (out.isEmpty()) {
            throw new KilnException(ExitCodes.USAGE, "--profiles-dir " + profilesDir + " holds no *.config files");
        }
        return out;
    }
}
