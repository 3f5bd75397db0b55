package dev.kiln.controller.cli;

import dev.kiln.controller.ExitCodes;
import dev.kiln.controller.KilnException;
import dev.kiln.controller.client.AgentClient;
import dev.kiln.controller.client.AgentEndpoint;
import dev.kiln.controller.fleet.Fleet;
import dev.kiln.controller.fleet.FleetSnapshot;
import dev.kiln.controller.fleet.FleetVolume;
import dev.kiln.controller.fleet.ManagedInstance;
import dev.kiln.controller.fleet.SnapshotPolicy;
import dev.kiln.controller.fleet.SnapshotWait;
import dev.kiln.proto.agent.v1.FreezeRequest;
import dev.kiln.proto.agent.v1.FreezeResponse;
import dev.kiln.proto.agent.v1.ListVolumesRequest;
import dev.kiln.proto.agent.v1.ThawRequest;
import io.grpc.StatusRuntimeException;
import jakarta.inject.Inject;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.UUID;

/** {@code kiln snapshot}: a consistent, point-in-time snapshot of one of an instance's volumes. */
@TimeoutMixin.Default(value = "30s", what = "Timeout of each request to the agent")
@Command(name = "snapshot", mixinStandardHelpOptions = true,
        description = {"Snapshot a volume of a managed instance: the agent freezes its filesystem (under a short lease),",
                "EC2's CreateSnapshot fixes the point in time, and the agent thaws it at once. --keep N then deletes",
                "the older Kiln snapshots of the same collection and volume role beyond the newest N (never the newest",
                "completed one, never another collection's, never others')."})
public class SnapshotCommand implements Runnable {

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

    @Parameters(index = "1", paramLabel = "VOLUME", description = "A volume id, or the volume role given at launch (e.g. builds).")
    String volume;

    @Option(names = "--keep", paramLabel = "N", description = "Keep the newest N snapshots of this volume's collection and role (and always the newest"
            + " completed one); delete older Kiln ones.")
    Integer keep;

    @Option(names = "--collection", paramLabel = "NAME",
            description = "The collection of a volume launched by a Kiln before collections (a volume tagged with one keeps it).")
    String collection;

    @Option(names = "--build", paramLabel = "BUILD_ID", description = "Tag the snapshot with the build it holds.")
    String build;

    @Option(names = "--wait", description = "Wait until the snapshot has completed, showing its progress.")
    boolean waitForIt;

    @Option(names = "--wait-timeout", paramLabel = "DURATION", defaultValue = "2h",
            description = "How long --wait waits (default: ${DEFAULT-VALUE}).")
    String waitTimeout;

    @Option(names = "--freeze-lease", defaultValue = "30s", description = "Longest the filesystem may stay frozen (default: ${DEFAULT-VALUE}).")
    String freezeLease;

    @Mixin
    TimeoutMixin timeout;

    @Override
    public void run() {
        Duration lease = Durations.parse(freezeLease);
        if (lease.isZero() || lease.isNegative()) {
            // The agent reads a zero lease as "its default" (30s): refused here rather than frozen longer than asked.
            throw new KilnException(ExitCodes.USAGE, "--freeze-lease must be longer than 0, not '" + freezeLease + "'");
        }
        Fleet fleet = fleetOptions.fleet(fleets, instance);
        ManagedInstance m = fleet.get(instance);
        List<FleetVolume> volumes = fleet.volumes(m.id());
        FleetVolume found = volumes.stream().filter(x -> x.id().equals(volume) || x.role().equals(volume))
                .findFirst().orElseThrow(() -> new KilnException(ExitCodes.NOT_FOUND, "instance " + m.id() + " has no volume '"
                        + volume + "' (its volumes: " + volumes.stream().map(x -> x.id() + (x.role().isEmpty() ? "" : ":" + x.role()))
                        .toList() + ")"));
        FleetVolume v = inCollection(found);
        String role = v.roleOrId();
        if (keep != null) {
            // A --keep that cannot be applied is refused before anything is frozen or snapshotted.
            SnapshotPolicy.retain(List.of(), v.collection(), role, keep);
        }
        AgentEndpoint endpoint = fleetOptions.endpoint(context, m);
        FleetSnapshot snapshot;
        Duration requestTimeout = timeout.get(context);
        try (AgentClient agent = clients.client(endpoint, requestTimeout)) {
            String mountPoint;
            mountPoint = v.mountPoint() != null ? v.mountPoint()
                    : agent.stub().listVolumes(ListVolumesRequest.getDefaultInstance()).getVolumesList().stream()
                    .filter(x -> x.getVolumeId().equals(v.id()) && !x.getMountPoint().isEmpty())
                    .map(x -> x.getMountPoint()).findFirst().orElse(null);
            if (mountPoint != null && mountPoint.isEmpty()) {
                mountPoint = null;
                context.err().println("kiln: " + v.id() + " is a directory on this machine (no filesystem of its own to"
                        + " freeze); it is copied as it is");
            } else if (mountPoint != null) {
                FreezeResponse frozen = agent.stub().freeze(FreezeRequest.newBuilder().setMountPoint(mountPoint)
                        .setRequestId(UUID.randomUUID().toString())
                        .setLease(com.google.protobuf.Duration.newBuilder().setSeconds(lease.getSeconds())
                                .setNanos(lease.getNano())).build());
                context.err().println("kiln: froze " + mountPoint + " on " + m.id() + " (the agent thaws it by "
                        + Instant.ofEpochSecond(frozen.getThawBy().getSeconds(), frozen.getThawBy().getNanos())
                        + " at the latest)");
            } else {
                context.err().println("kiln: " + v.id() + " is not mounted on " + m.id() + "; snapshotting it as it is");
            }
            try {
                snapshot = fleet.createSnapshot(v, m, build);
                context.err().println("kiln: " + snapshot.id() + " started (point in time fixed)");
            } finally {
                if (mountPoint != null) {
                    try {
                        agent.stub().thaw(ThawRequest.newBuilder().setMountPoint(mountPoint).build());
                        context.err().println("kiln: thawed " + mountPoint);
                    } catch (StatusRuntimeException e) {
                        context.err().println("kiln: thaw failed (" + agent.translate(e).getMessage() + "); the agent thaws by itself"
                                + " when the freeze lease ends");
                    }
                }
            }
        }
        if (waitForIt) {
            snapshot = SnapshotWait.of(fleet).await(snapshot.id(), Durations.parse(waitTimeout),
                    s -> context.err().println("kiln: " + s.id() + " " + s.state() + " " + s.progress()));
        }
        new Table("SNAPSHOT", "VOLUME", "VOLUME-ROLE", "STATE", "COLLECTION").row(snapshot.id(), v.id(), role,
                snapshot.state(), v.collection().isEmpty() ? "-" : v.collection()).print(context.out());
        if (keep != null) {
            SnapshotPolicy.Retention pruned = fleet.prune(v.collection(), role, keep);
            List<String> deleted = pruned.delete().stream().map(FleetSnapshot::id).toList();
            context.err().println("kiln: kept the newest " + keep + " snapshot" + (keep == 1 ? "" : "s") + " of " + role
                    + " in collection " + v.collection() + "; deleted " + (deleted.isEmpty() ? "none" : String.join(", ", deleted)));
            pruned.notes().forEach(n -> context.err().println("kiln: " + n));
            fleet.snapshots(role).stream().filter(s -> !s.managed())
                    .forEach(s -> context.err().println("kiln: not pruned: " + unmarked(s)));
        }
    }

    /** What a snapshot without Kiln's mark is, and what Kiln does and does not do with it. */
    static String unmarked(FleetSnapshot s) {
        return s.id() + " carries no Kiln mark (made by hand, or by a Kiln from before the mark): it can be restored by"
                + " its id (" + s.volumeRole() + ":" + s.id() + "), but Kiln never prunes it or picks it as "
                + s.volumeRole() + ":latest; delete it yourself if it is not needed";
    }

    /**
     * The volume with its collection: its own tag, or --collection for a volume from a Kiln before
     * collections; a --collection that contradicts the tag is refused rather than obeyed.
     */
    private FleetVolume inCollection(FleetVolume v) {
        if (collection == null) {
            if (v.collection().isEmpty()) {
                context.err().println("kiln: " + v.id() + " names no collection (launched by a Kiln before collections): its"
                        + " snapshot names none either, and ROLE:latest will not pick it; pass --collection NAME");
            }
            return v;
        }
        SnapshotPolicy.checkCollection(collection);
        if (!v.collection().isEmpty() && !v.collection().equals(collection)) {
            throw new KilnException(ExitCodes.USAGE, v.id() + " belongs to collection '" + v.collection() + "', not '"
                    + collection + "'; its snapshots belong there too (leave out --collection)");
        }
        return new FleetVolume(v.id(), v.role(), v.mountPoint(), collection);
    }
}
