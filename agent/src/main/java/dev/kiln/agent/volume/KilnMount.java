package dev.kiln.agent.volume;

import java.nio.file.Path;

/**
 * A mount Kiln made: only these are unmounted, frozen and thawed through the API.
 *
 * @param mountPoint where it is mounted
 * @param device     the device node it was mounted from; empty for an overlay
 * @param deviceName the kernel name (for re-verifying identity); empty for an overlay
 * @param volumeId   the EBS volume id, empty if the device is not an EBS volume or for an overlay
 * @param filesystem "ext4", "xfs" or "overlay"
 * @param lowerDir   the overlay's lower (read-only) layer; null for a plain mount
 * @param upperDir   the overlay's upper (writable) layer; null for a plain mount
 */
public record KilnMount(Path mountPoint, String device, String deviceName, String volumeId, String filesystem,
                        Path lowerDir, Path upperDir) {

    public boolean overlay() {
        return lowerDir != null;
    }
}
