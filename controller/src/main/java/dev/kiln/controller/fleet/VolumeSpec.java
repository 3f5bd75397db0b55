package dev.kiln.controller.fleet;

import dev.kiln.controller.ExitCodes;
import dev.kiln.controller.KilnException;

import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A volume to attach at launch, written {@code ROLE:SIZE} (a new blank volume of SIZE GiB),
 * {@code ROLE:snap-...} (restored from that snapshot) or {@code ROLE:latest} (restored from the
 * newest Kiln snapshot of that role in the volume's collection).
 *
 * @param role       the volume's role, e.g. sources, builds, data
 * @param sizeGiB    size of a new volume (or a larger size for a restored one); 0 when restored as is
 * @param snapshotId snapshot to restore, or null
 * @param latest     restore the newest snapshot of the role
 * @param collection the collection the volume belongs to: its tag, and where {@code latest} looks
 */
public record VolumeSpec(String role, int sizeGiB, String snapshotId, boolean latest, String collection) {

    /** A volume of the default collection. */
    public VolumeSpec(String role, int sizeGiB, String snapshotId, boolean latest) {
        this(role, sizeGiB, snapshotId, latest, SnapshotPolicy.DEFAULT_COLLECTION);
    }

    /** This volume in another collection. */
    public VolumeSpec inCollection(String name) {
        return new VolumeSpec(role, sizeGiB, snapshotId, latest, SnapshotPolicy.checkCollection(name));
    }

    private static final Pattern FORM = Pattern.compile("([a-z][a-z0-9-]{0,31}):(\\d+|snap-(?:local-)?[0-9a-f]+|latest)");

    public static VolumeSpec parse(String text) {
        Matcher m = FORM.matcher(text.trim());
        if (!m.matches()) {
            throw new KilnException(ExitCodes.USAGE, "volume '" + text + "' must be ROLE:SIZE_GIB, ROLE:snap-ID or ROLE:latest,"
                    + " e.g. builds:100, sources:latest (ROLE: lower-case letters, digits, '-')");
        }
        String what = m.group(2);
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
