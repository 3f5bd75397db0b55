package dev.kiln.agent.volume;

import java.util.regex.Pattern;

/**
 * Which volume a request means: an EBS volume id (preferred) and/or a device path. The path is a
 * hint only when an id is given (a {@code /dev/sdf} or {@code /dev/disk/by-id} link may be stale);
 * without an id it names the device itself (local mode, loop devices).
 *
 * @param volumeId   "vol-" and 8 or 17 hex digits, or empty
 * @param deviceHint an absolute path under /dev, or empty
 */
public record VolumeRef(String volumeId, String deviceHint) {

    private static final Pattern VOLUME_ID = Pattern.compile("vol-([0-9a-f]{8}|[0-9a-f]{17})");

    public VolumeRef {
        volumeId = volumeId == null ? "" : volumeId.strip();
        deviceHint = deviceHint == null ? "" : deviceHint.strip();
    }

    /** @throws IllegalArgumentException naming the field and what is allowed */
    public void validate() {
        if (volumeId.isEmpty() && deviceHint.isEmpty()) {
            throw new IllegalArgumentException("a volume id (vol-...) or a device path (/dev/...) is required");
        }
        if (!volumeId.isEmpty() && !VOLUME_ID.matcher(volumeId).matches()) {
            throw new IllegalArgumentException("'" + volumeId + "' is not an EBS volume id (vol- and 8 or 17 hex digits)");
        }
        if (!deviceHint.isEmpty() && (!deviceHint.startsWith("/dev/") || deviceHint.contains("/../")
                || deviceHint.endsWith("/..") || deviceHint.length() <= "/dev/".length())) {
            throw new IllegalArgumentException("device '" + deviceHint + "' must be a path under /dev, e.g. /dev/sdf or /dev/loop3");
        }
    }

    /** "vol-0123..." or "/dev/sdf", for messages. */
    public String describe() {
        if (volumeId.isEmpty()) {
            return deviceHint;
        }
        return deviceHint.isEmpty() ? volumeId : volumeId + " (hint " + deviceHint + ")";
    }
}
