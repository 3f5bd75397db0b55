package dev.kiln.agent.volume;

/**
 * What a mount did.
 *
 * @param volume         the volume as it is now
 * @param formatted      the device was blank and was formatted by this request
 * @param alreadyMounted it was already mounted as requested; nothing was done
 * @param grown          the filesystem was grown to fill an enlarged volume
 */
public record MountResult(VolumeInfo volume, boolean formatted, boolean alreadyMounted, boolean grown) {
}
