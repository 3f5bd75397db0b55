package dev.kiln.controller.cli;

import dev.kiln.controller.client.AgentClient;
import dev.kiln.proto.agent.v1.Build;
import dev.kiln.proto.agent.v1.ListBuildsRequest;
import dev.kiln.proto.agent.v1.ListBuildsResponse;
import jakarta.inject.Inject;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.time.Duration;
import java.time.Instant;

/** {@code kiln builds}: list an agent's builds, newest first. */
@Command(name = "builds", mixinStandardHelpOptions = true, description = {"List the agent's builds, newest first.",
        "A boot build (kiln.boot-build) is one of them, labelled kiln:boot=true; when it was not started, the reason is on stderr."})
public class BuildsCommand implements Runnable {

    @Inject
    Context context;

    @Inject
    AgentClients clients;

    @Mixin
    AgentMixin agent;

    @Mixin
    OutputMixin output;

    @Option(names = "--limit", defaultValue = "20", description = "At most this many (default: ${DEFAULT-VALUE}).")
    int limit;

    @Mixin
    TimeoutMixin timeout;

    @Override
    public void run() {
        OutputFormat format = output.format(context.settings());
        ListBuildsResponse list;
        try (AgentClient client = clients.connect(agent, timeout.get(context))) {
            list = client.stub().listBuilds(ListBuildsRequest.newBuilder().setLimit(limit).build());
        }
        for (String problem : list.getBootBuildErrorsList()) {
            context.err().println("kiln: " + problem);
        }
        if (format == OutputFormat.json) {
            Json.print(context.out(), list);
            return;
        }
        Table t = format == OutputFormat.wide
                ? new Table("ID", "STATE", "EXIT", "PROGRESS", "STARTED", "TOOK", "LOG", "WORK TREE", "WHAT")
                : new Table("ID", "STATE", "EXIT", "PROGRESS", "STARTED", "TOOK", "WORK TREE");
        for (Build b : list.getBuildsList()) {
            String exit = b.getHasExitCode() ? Integer.toString(b.getExitCode()) : "";
            String progress = b.getProgress().getTotal() > 0 ? b.getProgress().getDone() + "/" + b.getProgress().getTotal() : "";
            String started = b.hasStartedAt() ? Instant.ofEpochSecond(b.getStartedAt().getSeconds()).toString() : "";
            String took = b.hasStartedAt() && b.hasEndedAt()
                    ? Durations.format(Duration.ofSeconds(b.getEndedAt().getSeconds() - b.getStartedAt().getSeconds())) : "";
            String what = b.getRequest().hasCommand() ? String.join(" ", b.getRequest().getCommand().getArgvList())
                    : "tup " + String.join(" ", b.getRequest().getTup().getProfilesList());
            if (format == OutputFormat.wide) {
                t.row(b.getId(), BuildCommand.state(b), exit, progress, started, took, Long.toString(b.getLogSizeBytes()),
                        b.getRequest().getWorkTree(), what.strip());
            } else {
                t.row(b.getId(), BuildCommand.state(b), exit, progress, started, took, b.getRequest().getWorkTree());
            }
        }
        t.print(context.out());
    }
}
