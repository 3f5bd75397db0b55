package dev.kiln.agent.volume;

/**
 * What {@link FormatDecider} found on a device.
 *
 * @param decision   the answer
 * @param filesystem the filesystem type blkid reports ("ext4", "xfs", "crypto_LUKS"), empty if none
 * @param label      the filesystem label, empty if none
 * @param reason     why, in words a user can act on, e.g. "a gpt partition table"
 */
public record Probe(FormatDecision decision, String filesystem, String label, String reason) {
}
