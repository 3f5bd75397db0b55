package dev.kiln.agent.schedule;

import dev.kiln.agent.volume.KilnMount;

import java.io.IOException;
import java.time.Instant;
import java.util.List;

/**
 * Where a scheduled snapshot goes: EC2 (CreateSnapshot through the instance profile) or the
 * local fleet's snapshot store (a copy of the volume's image). The runner freezes the volume
 * around {@link #create}, so a backend only fixes the point in time; it never freezes or thaws.
 */
public interface SnapshotBackend {

    /**
     * The volume under a mount, with what its snapshots are tagged with.
     *
     * @param role         the volume role
     * @param mountPoint   where it is mounted
     * @param volumeId     vol-... (EC2) or vol-local-... (local)
     * @param collection   its collection, or empty
     * @param instanceRole the instance's role (worker, server, ...), or empty
     * @param source       what the backend copies or names (the image path locally; the volume id on EC2)
     */
    record Target(String role, java.nio.file.Path mountPoint, String volumeId, String collection, String instanceRole,
                  String source) {
    }

    /**
     * A snapshot of the role, as the backend lists it.
     *
     * @param id         snap-...
     * @param started    its point in time
     * @param managed    whether a schedule took it of this same volume (only those are ever deleted)
     * @param collection its collection, or empty
     * @param state      pending, completed or error
     */
    record Taken(String id, Instant started, boolean managed, String collection, String state) {
    }

    /** What the volume mounted by Kiln at {@code mount} is, for snapshots of {@code role}. */
    Target target(String role, KilnMount mount) throws IOException;

    /**
     * Fixes the point in time of a snapshot of the (frozen) volume. For a copy, the whole copy
     * happens here; the caller checks afterwards that the freeze held throughout.
     */
    Taken create(Target target) throws IOException;

    /**
     * Finishes a snapshot after the thaw (a copy's journal replay), if the backend needs to; a
     * failure here leaves no snapshot behind.
     */
    default Taken finish(Target target, Taken taken) throws IOException {
        return taken;
    }

    /**
     * Removes a snapshot that must not count: its point in time may lie after the thaw (the call
     * outlived the freeze lease), or it could not be finished.
     */
    void abandon(Target target, Taken taken);

    /** Every snapshot of the target's role, Kiln's and others', in any order. */
    List<Taken> list(Target target) throws IOException;

    /** Deletes one of Kiln's snapshots; refuses one without Kiln's mark. */
    void delete(Target target, Taken snapshot) throws IOException;

    /** What the backend is, for messages: "EC2 (eu-west-1)" or "the fleet's snapshot store /path". */
    String describe();
}
