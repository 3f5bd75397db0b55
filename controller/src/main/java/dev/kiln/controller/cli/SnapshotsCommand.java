package dev.kiln.controller.cli;

import jakarta.inject.Inject;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import dev.kiln.controller.fleet.FleetSnapshot;

/** {@code kiln snapshots}: Kiln's snapshots, newest first. */
@Command(name = "snapshots", mixinStandardHelpOptions = true, description = "List Kiln's snapshots (EBS snapshots tagged kiln:managed, or the local provider's copies), newest first.")
public class SnapshotsCommand implements Runnable {

    @Inject
    Context context;

    @Mixin
    FleetMixin fleetOptions;

    @Option(names = "--role", paramLabel = "VOLUME_ROLE", description = "Only this volume role (e.g. builds).")
    String role;

    @Override
    public void run() {
        Table t = new Table("SNAPSHOT", "VOLUME-ROLE", "STATE", "PROGRESS", "SIZE-GIB", "STARTED", "SOURCE-INSTANCE", "BUILD");
        for (FleetSnapshot s : fleetOptions.fleet(context).snapshots(role)) {
            if (!s.managed()) {
                context.err().println("kiln: " + SnapshotCommand.unmarked(s));
            }
            t.row(s.id(), s.volumeRole(), s.state(), s.progress(), s.sizeGiB() == 0 ? "" : Long.toString(s.sizeGiB()),
                    String.valueOf(s.startTime().truncatedTo(java.time.temporal.ChronoUnit.SECONDS)), s.sourceInstance(), s.buildId());
        }
        t.print(context.out());
    }
}
