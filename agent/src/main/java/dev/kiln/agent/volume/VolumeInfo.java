package dev.kiln.agent.volume;

import java.nio.file.Path;
import java.util.List;

/**
 * One line of ListVolumes: a block device (or a Kiln overlay) and what is on it.
 *
 * @param device     the device node, or "overlay"
 * @param volumeId   the EBS volume id, empty if none
 * @param sizeBytes  its size (0 for an overlay)
 * @param filesystem what blkid found ("ext4", "xfs", "crypto_LUKS", ...), or "overlay"; empty if nothing
 * @param label      the filesystem label
 * @param mountPoint where it is mounted, null if not mounted
 * @param options    the mount's options, empty if not mounted
 * @param decision   the format decision; null for an overlay
 * @param reason     why that decision (or what an overlay combines)
 * @param frozen     whether Kiln froze it and has not thawed it yet
 */
public record VolumeInfo(String device, String volumeId, long sizeBytes, String filesystem, String label,
                         Path mountPoint, List<String> options, FormatDecision decision, String reason, boolean frozen) {
}
