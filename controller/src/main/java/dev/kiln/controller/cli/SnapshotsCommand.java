package dev.kiln.controller.cli;

import jakarta.inject.Inject;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import software.amazon.awssdk.services.ec2.model.Snapshot;
import software.amazon.awssdk.services.ec2.model.Tag;

/** {@code kiln snapshots}: Kiln's snapshots, newest first. */
@Command(name = "snapshots", mixinStandardHelpOptions = true, description = "List Kiln's EBS snapshots (kiln:managed), newest first.")
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
        for (Snapshot s : fleetOptions.fleet(context).snapshots(role)) {
            t.row(s.snapshotId(), tag(s, "kiln:volume-role"), s.stateAsString(), s.progress(),
                    s.volumeSize() == null ? "" : s.volumeSize().toString(), String.valueOf(s.startTime()),
                    tag(s, "kiln:source-instance"), tag(s, "kiln:build-id"));
        }
        t.print(context.out());
    }

    static String tag(Snapshot s, String key) {
        return s.tags().stream().filter(x -> x.key().equals(key)).map(Tag::value).findFirst().orElse("");
    }
}
