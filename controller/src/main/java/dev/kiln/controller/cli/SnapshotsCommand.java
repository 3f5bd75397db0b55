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

    @Inject
    Fleets fleets;

    @Mixin
    FleetMixin fleetOptions;

    @Option(names = "--role", paramLabel = "VOLUME_ROLE", description = "Only this volume role (e.g. builds).")
    String role;

    @Option(names = "--collection", paramLabel = "NAME", description = "Only this collection ('-': snapshots that name none).")
    String collection;

    @Override
    public void run() {
        Table t = new Table("SNAPSHOT", "COLLECTION", "VOLUME-ROLE", "STATE", "PROGRESS", "SIZE-GIB", "STARTED", "SOURCE-INSTANCE", "BUILD");
        for (FleetSnapshot s : fleetOptions.fleet(fleets).snapshots(role)) {
            String in = s.collection().isEmpty() ? "-" : s.collection();
            if (collection != null && !collection.equals(in)) {
                continue;
            }
            if (!s.managed()) {
                context.err().println("kiln: " + SnapshotCommand.unmarked(s));
            }
            t.row(s.id(), in, s.volumeRole(), s.state(), s.progress(), s.sizeGiB() == 0 ? "" : Long.toString(s.sizeGiB()),
                    String.valueOf(s.startTime().truncatedTo(java.time.temporal.ChronoUnit.SECONDS)), s.sourceInstance(), s.buildId());
        }
        t.print(context.out());
    }
}
