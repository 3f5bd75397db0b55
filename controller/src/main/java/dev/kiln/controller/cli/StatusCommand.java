package dev.kiln.controller.cli;

import dev.kiln.controller.client.AgentClient;
import dev.kiln.controller.client.AgentEndpoint;
import dev.kiln.proto.agent.v1.StatusResponse;
import jakarta.inject.Inject;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.time.Duration;
import java.time.Instant;
import java.util.Locale;

/** {@code kiln status}: one agent's status. */
@TimeoutMixin.Default(what = "How long to wait for the agent's answer")
@Command(name = "status", mixinStandardHelpOptions = true,
        description = {"Show an agent's status: version, mode, instance id, uptime, lease, labels, the boot script's",
                "state and each service's state, pid, restarts, port and link."})
public class StatusCommand implements Runnable {

    @Inject
    Context context;

    @Inject
    Fleets fleets;

    @Inject
    AgentClients clients;

    @Mixin
    AgentMixin agent;

    @Mixin
    OutputMixin output;

    @Mixin
    TimeoutMixin timeout;

    /** A timestamp as ISO-8601 UTC (seconds), or "" when unset. */
    static String time(com.google.protobuf.Timestamp t) {
        return t.getSeconds() == 0 ? "" : Instant.ofEpochSecond(t.getSeconds()).toString();
    }

    @Override
    public void run() {
        AgentEndpoint endpoint = agent.resolve(fleets);
        OutputFormat format = output.format(context.settings());
        StatusResponse status;
        try (AgentClient client = clients.client(endpoint, timeout.get(context))) {
            status = client.status();
        }
        // A local agent knows only its host's name (local-HOSTNAME); the fleet knows which instance it is.
        java.util.Optional<String> local = agent.localInstanceId(context.settings());
        if (local.isPresent() && status.getMode() == dev.kiln.proto.agent.v1.Mode.MODE_LOCAL) {
            status = status.toBuilder().setInstanceId(local.get()).build();
        }
        if (format == OutputFormat.json) {
            Json.print(context.out(), status);
            return;
        }
        Instant started = Instant.ofEpochSecond(status.getStartedAt().getSeconds(), status.getStartedAt().getNanos());
        Table table = new Table("FIELD", "VALUE")
                .row("agent", endpoint.toString())
                .row("version", status.getAgentVersion())
                .row("mode", status.getMode().name().replace("MODE_", "").toLowerCase(Locale.ROOT))
                .row("instance", status.getInstanceId())
                .row("region", status.getRegion())
                .row("host", status.getHostname())
                .row("state", status.getState().name().replace("AGENT_STATE_", "").toLowerCase(Locale.ROOT))
                .row("started", started.toString())
                .row("uptime", Durations.format(Duration.ofSeconds(status.getUptime().getSeconds())))
                .row("deadline", status.getLease().getForever() ? "none (forever)" : time(status.getLease().getDeadline())
                        + " (in " + Durations.format(Duration.ofSeconds(status.getLease().getRemaining().getSeconds())) + ")")
                .row("max-deadline", time(status.getLease().getMaxDeadline()))
                .row("ends-by", status.getLease().getEndReason().name().replace("END_REASON_", "").toLowerCase(Locale.ROOT)
                        .replace("unspecified", ""))
                .row("busy", String.join("; ", status.getBusyReasonsList()))
                .row("build", status.hasCurrentBuild() && !status.getCurrentBuild().getId().isEmpty()
                        ? status.getCurrentBuild().getId() + " " + status.getCurrentBuild().getProgress().getDone() + "/"
                        + status.getCurrentBuild().getProgress().getTotal() : "")
                .row("ssh", status.getSshPort() == 0 ? "not serving"
                        : endpoint.host() + ":" + status.getSshPort() + " " + status.getSshHostKeyFingerprint());
        if (!status.getLabelsMap().isEmpty()) {
            table.row("labels", String.join(",", new java.util.TreeMap<>(status.getLabelsMap()).entrySet().stream()
                    .map(e -> e.getKey() + "=" + e.getValue()).toList()));
        }
        if (status.hasBootScript()) {
            table.row("boot-script", ServiceLinks.boot(status) + (status.getBootScript().getId().isEmpty() ? ""
                    : ", " + status.getBootScript().getId()) + "; its log: kiln logs" + (agent.agent == null ? "" : " --agent "
                    + agent.agent) + " boot");
        }
        status.getServicesList().forEach(s -> table.row("service " + s.getName(), ServiceLinks.describe(endpoint.host(), s)));
        status.getSchedulesList().forEach(s -> table.row("schedule", s.getRole() + " " + ScheduleCommand.describe(s) + "; last: "
                + ScheduleCommand.result(s) + (s.getLastSnapshotId().isEmpty() ? "" : ", last snapshot " + s.getLastSnapshotId())
                + "; next run " + time(s.getNextRun())));
        // What the operator must fix (broken user data, a failed boot mount, a boot build not started): one row each.
        status.getProblemsList().forEach(p -> table.row("problem", p));
        table.print(context.out());
    }
}
