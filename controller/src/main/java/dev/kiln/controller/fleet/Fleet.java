package dev.kiln.controller.fleet;

import dev.kiln.controller.ExitCodes;
import dev.kiln.controller.KilnException;

import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Optional;
import java.util.function.Consumer;

/**
 * Where managed instances live: EC2 ({@link Ec2Fleet}), or this machine ({@code local}, agents as
 * local processes). The fleet commands (launch, ls, snapshot, snapshots, terminate, reap, and
 * extend/stop on instances) work the same on either.
 */
public interface Fleet {

    /** "ec2" or "local". */
    String provider();

    /** Managed instances in the given states (all but terminated when empty), oldest first. */
    List<ManagedInstance> list(List<String> states);

    /** Managed instances that are pending or running. */
    default List<ManagedInstance> active() {
        return list(List.of("pending", "running"));
    }

    /** One managed instance by id; NOT_FOUND or REFUSED (not Kiln's) otherwise. */
    ManagedInstance get(String id);

    /**
     * The record an ended instance left, when the fleet keeps one (the local provider does; EC2
     * lists terminated instances for a while by itself).
     */
    default java.util.Optional<EndedInstance> ended(String id) {
        return java.util.Optional.empty();
    }

    /** The records of ended instances the fleet keeps, oldest first. */
    default List<EndedInstance> ended() {
        return List.of();
    }

    /** The instance's volumes with their roles. */
    List<FleetVolume> volumes(String instanceId);

    /** The instance's work tree (where uploads land and builds run), or null when it has no volume. */
    default String workTree(String instanceId) {
        ManagedInstance m = get(instanceId);
        return InstanceLayout.plan("", m.role(), volumes(instanceId).stream()
                .map(v -> new InstanceLayout.Volume(v.role(), v.id(), "", false)).toList()).workTree();
    }

    /** Starts a snapshot of a volume (the caller froze its filesystem, if it is mounted), tagged for retention. */
    FleetSnapshot createSnapshot(FleetVolume volume, ManagedInstance instance, String buildId);

    /**
     * Kiln's snapshots (of one volume role, or all when null), newest first; the local provider
     * also lists well-formed snapshots without Kiln's mark, with {@link FleetSnapshot#managed} false.
     */
    List<FleetSnapshot> snapshots(String volumeRole);

    /**
     * Deletes the older Kiln snapshots of a collection's volume role beyond the newest {@code keep}
     * ({@link SnapshotPolicy#retain}): never the newest completed one, never another collection's,
     * never one without Kiln's mark or without a collection.
     *
     * @return what was deleted, and what the user should know
     */
    default SnapshotPolicy.Retention prune(String collection, String volumeRole, int keep) {
        SnapshotPolicy.Retention plan = SnapshotPolicy.retain(snapshots(volumeRole), collection, volumeRole, keep);
        plan.delete().forEach(this::deleteSnapshot);
        return plan;
    }

    /**
     * The snapshot {@code ROLE:latest} restores in the volume's collection ({@link SnapshotPolicy#latest}),
     * narrating what was passed over.
     */
    default FleetSnapshot resolveLatest(VolumeSpec volume, Consumer<String> narrate) {
        SnapshotPolicy.Restore r = SnapshotPolicy.latest(snapshots(volume.role()), volume.collection(), volume.role());
        r.notes().forEach(narrate);
        return r.snapshot();
    }

    /**
     * One snapshot by id as it is now, or empty when the provider does not know it (yet: EC2 may
     * not list a snapshot for a moment after CreateSnapshot).
     */
    default Optional<FleetSnapshot> snapshot(String id) {
        return snapshots(null).stream().filter(s -> s.id().equals(id)).findFirst();
    }

    /** Deletes one snapshot that {@link #prune} chose. */
    void deleteSnapshot(FleetSnapshot snapshot);

    /**
     * Refuses a launch when {@code maxInstances} (0: no cap) managed instances are already pending
     * or running, listing them.
     */
    default void refuseAtCap(int maxInstances) {
        List<ManagedInstance> running = active();
        if (maxInstances > 0 && running.size() >= maxInstances) {
            StringBuilder b = new StringBuilder("the fleet cap is " + maxInstances + " and " + running.size()
                    + " managed instances are pending or running:");
            running.forEach(m -> b.append("\n  ").append(m.id()).append(' ').append(m.role()).append(' ').append(m.state())
                    .append(m.labels().isEmpty() ? "" : " " + m.labels()));
            b.append("\nend one (kiln terminate ID) or raise the cap (--max)");
            throw new KilnException(ExitCodes.REFUSED, b.toString());
        }
    }

    /** Ends instances without asking their agents (the --force and reap path). */
    void terminate(List<String> ids);

    /** {@link #terminate(List)}, saying why in the fleet's record of how each ended. */
    default void terminate(List<String> ids, String how) {
        terminate(ids);
    }

    /**
     * Records where {@code kiln reap} reads it (the kiln:expires-at tag on EC2) the deadline an
     * instance's agent now holds, so that the record follows the lease after an extension.
     */
    void recordDeadline(String id, Instant deadline);

    /** Every volume of the fleet, attached or not, oldest first ({@code kiln volumes --fleet}). */
    default List<StoredVolume> storedVolumes() {
        throw new KilnException(ExitCodes.USAGE, "the " + provider() + " provider does not list its volumes");
    }

    /**
     * Deletes an available volume ({@code kiln volume rm}): refuses one in use (naming its
     * instance), and one Kiln did not create unless {@code force}.
     *
     * @return what was deleted, in the user's terms
     */
    default String deleteVolume(String volumeId, boolean force) {
        throw new KilnException(ExitCodes.USAGE, "the " + provider() + " provider does not delete volumes");
    }

    /**
     * Applies the data-safe rule (docs/volumes.md) to the volumes whose instance has ended: deletes
     * those whose data is safe, keeps and flags the others. One line each, in the user's terms.
     *
     * @param dryRun only say what would happen
     */
    default List<String> reapVolumes(boolean dryRun) {
        return List.of();
    }

    /** Managed instances whose lease passed more than {@code grace} ago, still pending or running. */
    default List<ManagedInstance> expired(Instant now, Duration grace) {
        return active().stream().filter(m -> m.expiresAt() != null && m.expiresAt().plus(grace).isBefore(now)).toList();
    }
}
