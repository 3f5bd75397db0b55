package dev.kiln.controller.fleet;

import java.time.Instant;

/**
 * A volume of the fleet as {@code kiln volumes --fleet} lists it, attached or not.
 *
 * @param id      vol-... (EC2) or vol-local-...
 * @param role    its volume role, or empty
 * @param sizeGiB its size, or 0 when unknown
 * @param inUseBy the instance it is attached to, or null when it is available
 * @param created when it was created, or null when unknown
 * @param kept    marked to keep after its instance ends ({@code --keep-volume})
 * @param unsaved why its data is not known to be safe (kept for that, never deleted on a guess), or empty
 * @param kilns   whether Kiln created it (tagged kiln:managed=true on EC2; a volume.properties Kiln wrote locally)
 */
public record StoredVolume(String id, String role, long sizeGiB, String inUseBy, Instant created, boolean kept,
                           String unsaved, boolean kilns) {

    public StoredVolume {
        role = role == null ? "" : role;
        unsaved = unsaved == null ? "" : unsaved;
    }

    /** "in use by INSTANCE" or "available". */
    public String state() {
        return inUseBy == null ? "available" : "in use by " + inUseBy;
    }

    /** "kept", "unsaved", both, or "-". */
    public String fate() {
        if (kept && !unsaved.isEmpty()) {
            return "kept,unsaved";
        }
        return kept ? "kept" : unsaved.isEmpty() ? "-" : "unsaved";
    }
}
