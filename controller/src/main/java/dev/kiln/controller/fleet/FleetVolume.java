package dev.kiln.controller.fleet;

/**
 * A managed instance's volume.
 *
 * @param id         the volume id (vol-...)
 * @param role       its volume role (sources, builds, ...), or empty
 * @param mountPoint where the agent mounts it, when the provider knows (local); null: ask the agent
 */
public record FleetVolume(String id, String role, String mountPoint) {

    /** The role, or the id for a volume without one. */
    public String roleOrId() {
        return role.isEmpty() ? id : role;
    }
}
