package dev.kiln.controller.fleet;

import java.time.Duration;
import java.time.Instant;
import java.util.List;

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

    /** Kiln's snapshots (of one volume role, or all when null), newest first. */
    List<FleetSnapshot> snapshots(String volumeRole);

    /**
     * Deletes the older Kiln snapshots of a volume role beyond the newest {@code keep}; never the
     * newest one, never one Kiln did not create.
     *
     * @return the deleted snapshot ids
     */
    List<String> prune(String volumeRole, int keep);

    /** Ends instances without asking their agents (the --force and reap path). */
    void terminate(List<String> ids);

    /** Managed instances whose lease passed more than {@code grace} ago, still pending or running. */
    default List<ManagedInstance> expired(Instant now, Duration grace) {
        return active().stream().filter(m -> m.expiresAt() != null && m.expiresAt().plus(grace).isBefore(now)).toList();
    }
}
