package dev.kiln.controller.fleet;

import dev.kiln.controller.ExitCodes;
import dev.kiln.controller.KilnException;

import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A volume to attach at launch, written {@code ROLE:SIZE} (a new blank volume of SIZE GiB),
 * {@code ROLE:snap-...} (restored from that snapshot) or {@code ROLE:latest} (restored from the
 * newest Kiln snapshot of that role in the volume's collection), or {@code ROLE:vol-...} (an existing
 * volume of the fleet, attached as it is).
 *
 * @param role       the volume's role, e.g. sources, builds, data
 * @param sizeGiB    size of a new volume (or a larger size for a restored one); 0 when restored as is
 * @param snapshotId snapshot to restore, or null
 * @param latest     restore the newest snapshot of the role
 * @param collection the collection the volume belongs to: its tag, and where {@code latest} looks
 * @param volumeId   an existing volume to attach (vol-... on EC2, vol-local-... locally), or null
 * @param keep       keep it after the instance ends ({@code --keep-volume ROLE}); otherwise the data-safe rule decides
 */
public record VolumeSpec(String role, int sizeGiB, String snapshotId, boolean latest, String collection, String volumeId,
                         boolean keep) {

    /** A volume of the default collection. */
    public VolumeSpec(String role, int sizeGiB, String snapshotId, boolean latest) {
        this(role, sizeGiB, snapshotId, latest, SnapshotPolicy.DEFAULT_COLLECTION);
    }

    /** A volume to create or restore. */
    public VolumeSpec(String role, int sizeGiB, String snapshotId, boolean latest, String collection) {
        this(role, sizeGiB, snapshotId, latest, collection, null, false);
    }

    /** This volume, kept after the instance ends. */
    public VolumeSpec kept() {
        return new VolumeSpec(role, sizeGiB, snapshotId, latest, collection, volumeId, true);
    }

    /** This volume in another collection (an existing volume keeps the collection it has). */
    public VolumeSpec inCollection(String name) {
        return new VolumeSpec(role, sizeGiB, snapshotId, latest, SnapshotPolicy.checkCollection(name), volumeId, keep);
    }

    /** Whether this names an existing volume, attached as it is. */
    public boolean existing() {
        return volumeId != null;
    }

    private static final Pattern FORM = Pattern.compile(
            "([a-z][a-z0-9-]{0,31}):(\\d+|snap-(?:local-)?[0-9a-f]+|latest|vol-(?:local-[0-9a-f]{8}|[0-9a-f]{8}|[0-9a-f]{17}))");

    public static VolumeSpec parse(String text) {
        Matcher m = FORM.matcher(text.trim());
        if (!m.matches()) {
            throw new KilnException(ExitCodes.USAGE, "volume '" + text + "' must be ROLE:SIZE_GIB, ROLE:snap-ID, ROLE:latest"
                    + " or ROLE:vol-ID, e.g. builds:100, sources:latest, data:vol-0123456789abcdef0 (ROLE: lower-case letters,"
                    + " digits, '-')");
        }
        String what = m.group(2);
        if (what.startsWith("vol-")) {
            return new VolumeSpec(m.group(1), 0, null, false, SnapshotPolicy.DEFAULT_COLLECTION, what, false);
        }
        if (what.equals("latest")) {
            return new VolumeSpec(m.group(1), 0, null, true);
        }
        if (what.startsWith("snap-")) {
            return new VolumeSpec(m.group(1), 0, what, false);
        }
        int size = Integer.parseInt(what);
        if (size < 1 || size > 16384) {
            throw new KilnException(ExitCodes.USAGE, "volume '" + text + "': size must be 1-16384 GiB");
        }
        return new VolumeSpec(m.group(1), size, null, false);
    }
}
