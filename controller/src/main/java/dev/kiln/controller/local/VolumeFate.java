package dev.kiln.controller.local;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Properties;
import java.util.function.Supplier;

/**
 * The data-safe rule for a local volume whose instance has ended (docs/volumes.md, "When an
 * instance ends"): it is deleted only when nothing is lost by it, that is when
 * <ul>
 *   <li>it is unchanged since it was attached (its {@link VolumeStamp} equals the one taken
 *   then) and was either created blank (it holds nothing) or restored from a snapshot that still
 *   exists (which holds all of it); or</li>
 *   <li>a Kiln snapshot of it still exists whose copy saw the same stamp it has now (nothing was
 *   written after that snapshot); or</li>
 *   <li>its ext4 image provably holds nothing beyond a snapshot copy of it that still exists
 *   ({@link ImageProof}: since then only the mounts' own superblock, journal and group-descriptor writes).</li>
 * </ul>
 * Every other volume is kept and said why: written since its last snapshot ("unsaved"), marked
 * to keep, still attached to a loop device, or of unknown history (a Kiln before these records).
 */
final class VolumeFate {

    private VolumeFate() {
    }

    /**
     * A volume's fate.
     *
     * @param volumeId vol-local-...
     * @param role     its role
     * @param dir      its directory
     * @param delete   whether it goes
     * @param why      why, in the user's terms
     */
    record Fate(String volumeId, String role, Path dir, boolean delete, String why) {

        static Fate gone(String volumeId, String role) {
            return new Fate(volumeId, role, null, false, "already gone");
        }

        /** One line for the record and for prune: "vol-local-... (builds): deleted: ..." or "... kept in DIR: ...". */
        String describe() {
            String name = volumeId + (role == null || role.isEmpty() ? "" : " (" + role + ")");
            if (dir == null) {
                return name + ": already gone";
            }
            return delete ? name + ": deleted: " + why : name + ": kept in " + dir + ": " + why;
        }
    }

    /**
     * Decides.
     *
     * @param props          its volume.properties (empty when it has none)
     * @param stampNow       its stamp now, or null when it cannot be read whole
     * @param devices        loop devices still over its image
     * @param sourceKept     whether the snapshot it was restored from still exists
     * @param snapshotStamps stamps the volume had when Kiln's existing snapshots of it were copied, by snapshot id
     * @param heldIn         the snapshot its content provably all lies in ({@link ImageProof}), asked only when the
     *                       stamps prove nothing, since it reads the whole image
     */
    static Fate decide(String volumeId, String role, Path dir, Properties props, String stampNow, List<String> devices,
                       boolean sourceKept, Map<String, String> snapshotStamps, Supplier<Optional<String>> heldIn) {
        if ("true".equals(props.getProperty("keep"))) {
            return new Fate(volumeId, role, dir, false, "marked to keep");
        }
        if (!devices.isEmpty()) {
            return new Fate(volumeId, role, dir, false, "its image is still attached to " + String.join(", ", devices));
        }
        if (stampNow == null) {
            return new Fate(volumeId, role, dir, false, "it cannot be read whole (no volume.img nor data/)");
        }
        String attached = props.getProperty("attach-stamp");
        if (attached == null) {
            return new Fate(volumeId, role, dir, false, "unsaved: its history is unknown (made by a Kiln that kept no"
                    + " record of its writes)");
        }
        String from = props.getProperty("from-snapshot");
        // An existing volume attached again held data already: unchanged since, it is still only as safe as its snapshots.
        boolean existing = "true".equals(props.getProperty("attached-existing"));
        if (stampNow.equals(attached) && !existing) {
            if (from == null) {
                return new Fate(volumeId, role, dir, true, "created blank and never written");
            }
            if (sourceKept) {
                return new Fate(volumeId, role, dir, true, "never written; all of it is in " + from);
            }
        }
        for (Map.Entry<String, String> s : snapshotStamps.entrySet()) {
            if (s.getValue().equals(stampNow)) {
                return new Fate(volumeId, role, dir, true, "all of it is in " + s.getKey() + ", taken after its last write");
            }
        }
        Optional<String> proved = heldIn.get();
        if (proved.isPresent()) {
            return new Fate(volumeId, role, dir, true, "all of it is in " + proved.get()
                    + " (since then only the mounts' own superblock, journal and group-descriptor writes)");
        }
        if (existing && snapshotStamps.isEmpty()) {
            return new Fate(volumeId, role, dir, false, "unsaved: it held data when it was attached, and no snapshot of it exists");
        }
        if (stampNow.equals(attached) && !existing) {
            return new Fate(volumeId, role, dir, false, "unsaved: restored from " + from + ", which no longer exists");
        }
        if (snapshotStamps.isEmpty() && from != null) {
            return new Fate(volumeId, role, dir, false, "unsaved: written since it was restored from " + from
                    + ", and no snapshot of it holds that");
        }
        return new Fate(volumeId, role, dir, false, snapshotStamps.isEmpty()
                ? "unsaved: written, and no snapshot of it exists"
                : "unsaved: written after its last snapshot (" + String.join(", ", snapshotStamps.keySet()) + ")");
    }
}
