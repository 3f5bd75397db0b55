package dev.kiln.controller.fleet;

import java.time.Instant;

/**
 * A Kiln snapshot of a volume.
 *
 * @param id             snap-...
 * @param volumeRole     the role of the volume it was taken from
 * @param state          pending, completed, error
 * @param progress       e.g. 100%
 * @param sizeGiB        the volume's size, or 0 when unknown
 * @param startTime      when it was taken (the point in time)
 * @param sourceInstance the instance it was taken on
 * @param buildId        the build it holds, or empty
 * @param managed        whether it carries Kiln's mark (the kiln:managed tag on EC2, managed=true with its own id in a
 *                       local snapshot's snapshot.properties): only those are pruned or picked as ROLE:latest
 * @param collection     the collection it belongs to (the kiln:collection tag, collection= locally), carried from
 *                       the volume it was taken from; empty for a snapshot from a Kiln before collections
 */
public record FleetSnapshot(String id, String volumeRole, String state, String progress, long sizeGiB, Instant startTime,
                            String sourceInstance, String buildId, boolean managed, String collection) {

    /** A snapshot that names no collection (taken by a Kiln before collections, or by hand). */
    public FleetSnapshot(String id, String volumeRole, String state, String progress, long sizeGiB, Instant startTime,
                         String sourceInstance, String buildId, boolean managed) {
        this(id, volumeRole, state, progress, sizeGiB, startTime, sourceInstance, buildId, managed, "");
    }

    public FleetSnapshot {
        collection = collection == null ? "" : collection;
    }
}
