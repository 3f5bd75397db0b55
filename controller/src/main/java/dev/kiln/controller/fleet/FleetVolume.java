package dev.kiln.controller.fleet;

/**
 * A managed instance's volume.
 *
 * @param id         the volume id (vol-...)
 * @param role       its volume role (sources, builds, ...), or empty
 * @param mountPoint where the agent mounts it, when the provider knows (local); null: ask the agent
 * @param collection the collection it belongs to (set at launch), or empty for a volume from a Kiln before collections
 */
public record FleetVolume(String id, String role, String mountPoint, String collection) {

    /** A volume that names no collection. */
    public FleetVolume(String id, String role, String mountPoint) {
        this(id, role, mountPoint, "");
    }

    public FleetVolume {
        collection = collection == null ? "" : collection;
    }

    /** The role, or the id for a volume without one. */
    public String roleOrId() {
        return role.isEmpty() ? id : role;
    }
}
