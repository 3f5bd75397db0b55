package dev.kiln.controller.cli;

import dev.kiln.controller.ExitCodes;
import dev.kiln.controller.KilnException;
import dev.kiln.controller.client.AgentClient;
import dev.kiln.controller.fleet.Fleet;
import dev.kiln.controller.fleet.ManagedInstance;
import dev.kiln.proto.agent.v1.ListSchedulesRequest;
import dev.kiln.proto.agent.v1.ListSchedulesResponse;
import dev.kiln.proto.agent.v1.Schedule;
import dev.kiln.proto.agent.v1.SetScheduleRequest;
import jakarta.inject.Inject;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.time.Duration;
import java.util.List;

/** {@code kiln schedule}: set, turn off or list an instance's scheduled snapshots. */
@TimeoutMixin.Default(value = "30s", what = "Timeout of the request to the agent")
@Command(name = "schedule", mixinStandardHelpOptions = true,
        description = {"Snapshot a volume on a schedule, run by the instance's agent with no workstation awake: optional pre",
                "command (as the build user), freeze, snapshot, thaw at once, optional post command, then keep the newest N",
                "of Kiln's snapshots of the role. With INSTANCE alone: list the schedules."})
public class ScheduleCommand implements Runnable {

    @Inject
    Context context;

    @Inject
    Fleets fleets;

    @Inject
    AgentClients clients;

    @Mixin
    FleetMixin fleetOptions;

    @Parameters(index = "0", paramLabel = "INSTANCE", description = "The instance id.")
    String instance;

    @Parameters(index = "1", arity = "0..1", paramLabel = "ROLE", description = "The volume role, e.g. data.")
    String role;

    @Option(names = "--every", paramLabel = "DURATION", description = "Time between snapshots, e.g. 24h or 6h (at least 1s).")
    String every;

    @Option(names = "--at", paramLabel = "HH:MM", description = "Time of day (UTC) of the runs, e.g. 03:00.")
    String at;

    @Option(names = "--keep", paramLabel = "N", description = "Keep the newest N of Kiln's snapshots of the role (default: all).")
    Integer keep;

    @Option(names = "--pre", paramLabel = "CMD", description = "Run before the freeze, as the build user (/bin/sh -c), e.g. a database flush.")
    String pre;

    @Option(names = "--post", paramLabel = "CMD", description = "Run after the thaw, as the build user (/bin/sh -c).")
    String post;

    @Option(names = "--off", description = "Remove the schedule of ROLE.")
    boolean off;

    @Mixin
    OutputMixin output;

    @Mixin
    TimeoutMixin timeout;

    @Override
    public void run() {
        boolean setting = every != null || at != null || keep != null || pre != null || post != null;
        if (role == null && (setting || off)) {
            throw new KilnException(ExitCodes.USAGE, "name the volume role to schedule: kiln schedule " + instance
                    + " ROLE --every 24h");
        }
        if (off && setting) {
            throw new KilnException(ExitCodes.USAGE, "--off removes the schedule; it takes no --every, --at, --keep, --pre or --post");
        }
        if (role != null && !off && every == null) {
            throw new KilnException(ExitCodes.USAGE, "--every is required, e.g. kiln schedule " + instance + " " + role
                    + " --every 24h --at 03:00 --keep 7 (or --off to remove it)");
        }
        if (keep != null && keep < 0) {
            throw new KilnException(ExitCodes.USAGE, "--keep must be 0 (keep all) or more, not " + keep);
        }
        Fleet fleet = fleetOptions.fleet(fleets, instance);
        ManagedInstance m = fleet.get(instance);
        try (AgentClient agent = clients.client(fleetOptions.endpoint(context, m), timeout.get(context))) {
            if (role == null) {
                ListSchedulesResponse r = agent.stub().listSchedules(ListSchedulesRequest.getDefaultInstance());
                print(r.getSchedulesList(), r);
                return;
            }
            SetScheduleRequest.Builder req = SetScheduleRequest.newBuilder().setRole(role).setOff(off);
            if (!off) {
                Duration d = Durations.parse(every);
                req.setEvery(com.google.protobuf.Duration.newBuilder().setSeconds(d.getSeconds()).setNanos(d.getNano()))
                        .setAt(at == null ? "" : at).setKeep(keep == null ? 0 : keep)
                        .setPre(pre == null ? "" : pre).setPost(post == null ? "" : post);
            }
            Schedule s = agent.stub().setSchedule(req.build());
            if (off) {
                context.err().println("kiln: removed the snapshot schedule of " + role + " on " + m.id()
                        + " (its snapshots are kept)");
                return;
            }
            context.err().println("kiln: " + m.id() + " snapshots " + role + " " + describe(s) + "; next run "
                    + StatusCommand.time(s.getNextRun()));
            print(List.of(s), s);
        }
    }

    private void print(List<Schedule> schedules, com.google.protobuf.MessageOrBuilder json) {
        if (output.format(context.settings()) == OutputFormat.json) {
            Json.print(context.out(), json);
            return;
        }
        Table t = new Table("ROLE", "EVERY", "AT", "KEEP", "LAST-RUN", "LAST", "LAST-SNAPSHOT", "NEXT-RUN");
        for (Schedule s : schedules) {
            t.row(s.getRole(), Durations.format(Duration.ofSeconds(s.getEvery().getSeconds())), s.getAt().isEmpty() ? "-" : s.getAt(),
                    s.getKeep() == 0 ? "all" : Integer.toString(s.getKeep()), or(StatusCommand.time(s.getLastRun())),
                    result(s), or(s.getLastSnapshotId()), StatusCommand.time(s.getNextRun()));
        }
        t.print(context.out());
    }

    /** "ok", "failing (3): why", or "-" before the first run. */
    static String result(Schedule s) {
        if (s.getLastRun().getSeconds() == 0) {
            return "-";
        }
        return s.getLastOk() && s.getFailures() == 0 ? "ok" : "failing (" + s.getFailures() + "): " + s.getLastResult();
    }

    /** "every 24h at 03:00 UTC, keep 7". */
    static String describe(Schedule s) {
        return "every " + Durations.format(Duration.ofSeconds(s.getEvery().getSeconds(), s.getEvery().getNanos()))
                + (s.getAt().isEmpty() ? "" : " at " + s.getAt() + " UTC") + (s.getKeep() == 0 ? ", keeping all" : ", keeping "
                + s.getKeep());
    }

    private static String or(String s) {
        return s.isEmpty() ? "-" : s;
    }
}
