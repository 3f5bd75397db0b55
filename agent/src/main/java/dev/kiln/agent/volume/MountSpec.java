package dev.kiln.agent.volume;

import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;

/**
 * What a mount request asks for: a volume (by id and/or device) at a mount point, or an overlay
 * work tree of two directories.
 *
 * @param ref         which volume; empty for an overlay
 * @param mountPoint  an absolute, normalised path
 * @param filesystem  the expected filesystem (or the one to create when formatting)
 * @param readOnly    mount {@code ro}
 * @param noexec      mount {@code noexec}
 * @param noatime     mount {@code noatime}
 * @param allowFormat format the device if, and only if, it is provably blank
 * @param label       the label when formatting; empty means derived from the mount point
 * @param attachWait  how long to wait for the device to appear; null means the agent's default
 * @param lowerDir    overlay: the read-only lower layer (the sources); null for a plain mount
 * @param upperDir    overlay: the writable upper layer (outputs and build database); null for a plain mount
 * @param createdEmpty the controller created the volume {@code ref} names empty (no snapshot) for this
 *                    launch and says so in user data: proof that it is blank (see {@link BlankProver})
 */
public record MountSpec(VolumeRef ref, Path mountPoint, Filesystem filesystem, boolean readOnly, boolean noexec,
                        boolean noatime, boolean allowFormat, String label, Duration attachWait, Path lowerDir, Path upperDir,
                        boolean createdEmpty) {

    /** Mount points Kiln never mounts over: they belong to the system. */
    private static final Set<Path> SYSTEM = Set.of("/", "/bin", "/boot", "/dev", "/etc", "/lib", "/lib32", "/lib64",
            "/proc", "/root", "/run", "/sbin", "/sys", "/tmp", "/usr", "/var").stream().map(Path::of).collect(java.util.stream.Collectors.toUnmodifiableSet());

    public MountSpec {
        ref = ref == null ? new VolumeRef("", "") : ref;
        filesystem = filesystem == null ? Filesystem.EXT4 : filesystem;
        label = label == null ? "" : label.strip();
    }

    /** A request that brings no proof of its own that the volume is blank (every API request). */
    public MountSpec(VolumeRef ref, Path mountPoint, Filesystem filesystem, boolean readOnly, boolean noexec,
                     boolean noatime, boolean allowFormat, String label, Duration attachWait, Path lowerDir, Path upperDir) {
        this(ref, mountPoint, filesystem, readOnly, noexec, noatime, allowFormat, label, attachWait, lowerDir, upperDir, false);
    }

    public boolean overlay() {
        return lowerDir != null || upperDir != null;
    }

    /** The mount options: {@code nodev,nosuid} always, the rest on request. */
    public List<String> options() {
        List<String> o = new ArrayList<>(List.of(readOnly ? "ro" : "rw", "nodev", "nosuid"));
        if (noexec) {
            o.add("noexec");
        }
        if (noatime) {
            o.add("noatime");
        }
        return o;
    }

    /** The label to format with: the request's, or the mount point's last name made fit. */
    public String effectiveLabel() {
        if (!label.isEmpty()) {
            return label;
        }
        String name = mountPoint.getFileName() == null ? "kiln" : mountPoint.getFileName().toString();
        String clean = name.replaceAll("[^A-Za-z0-9._-]", "");
        if (clean.isEmpty()) {
            clean = "kiln";
        }
        return clean.length() > filesystem.maxLabelLength() ? clean.substring(0, filesystem.maxLabelLength()) : clean;
    }

    /** @throws IllegalArgumentException naming the field and what is allowed */
    public void validate() {
        checkPath("mount point", mountPoint);
        if (SYSTEM.contains(mountPoint) || mountPoint.startsWith("/proc") || mountPoint.startsWith("/sys")
                || mountPoint.startsWith("/dev")) {
            throw new IllegalArgumentException("refusing to mount over " + mountPoint + ": it belongs to the system;"
                    + " choose a path such as /mnt/NAME or /data");
        }
        if (attachWait != null && attachWait.isNegative()) {
            throw new IllegalArgumentException("wait must not be negative");
        }
        if (overlay()) {
            if (lowerDir == null || upperDir == null) {
                throw new IllegalArgumentException("an overlay needs both a lower directory (the sources) and an upper directory (the outputs)");
            }
            if (!ref.volumeId().isEmpty() || !ref.deviceHint().isEmpty()) {
                throw new IllegalArgumentException("an overlay combines two directories; it takes no volume id or device");
            }
            if (allowFormat || createdEmpty) {
                throw new IllegalArgumentException("an overlay is never formatted; format the volumes under it");
            }
            checkPath("lower directory", lowerDir);
            checkPath("upper directory", upperDir);
            for (Path p : List.of(lowerDir, upperDir, mountPoint)) {
                String s = p.toString();
                if (s.contains(",") || s.contains(":") || s.contains("\\")) {
                    throw new IllegalArgumentException("overlay paths must not contain ',', ':' or '\\': " + s);
                }
            }
            for (Path a : List.of(lowerDir, upperDir)) {
                if (a.startsWith(mountPoint) || mountPoint.startsWith(a)) {
                    throw new IllegalArgumentException("the overlay's mount point " + mountPoint + " and its layer " + a
                            + " must not contain each other");
                }
            }
            if (lowerDir.startsWith(upperDir) || upperDir.startsWith(lowerDir)) {
                throw new IllegalArgumentException("the lower directory " + lowerDir + " and the upper directory " + upperDir
                        + " must not contain each other");
            }
            return;
        }
        ref.validate();
        if (createdEmpty && ref.volumeId().isEmpty()) {
            throw new IllegalArgumentException("created-empty needs the EBS volume id (vol-...) it vouches for;"
                    + " a device path alone could be any disk");
        }
        if (!label.isEmpty() && !label.matches("[A-Za-z0-9._-]{1," + filesystem.maxLabelLength() + "}")) {
            throw new IllegalArgumentException("label '" + label + "' must be 1-" + filesystem.maxLabelLength()
                    + " letters, digits, '.', '_' or '-' for " + filesystem);
        }
    }

    private static void checkPath(String what, Path p) {
        if (p == null || p.toString().isEmpty()) {
            throw new IllegalArgumentException("the " + what + " is required (an absolute path)");
        }
        if (!p.isAbsolute() || !p.normalize().equals(p) || p.toString().contains("/./") || p.toString().endsWith("/.")) {
            throw new IllegalArgumentException("the " + what + " must be an absolute path without '.' or '..': " + p);
        }
        for (char c : p.toString().toCharArray()) {
            if (c < 0x20 || c == 0x7f) {
                throw new IllegalArgumentException("the " + what + " must not contain control characters: " + p.toString().strip());
            }
        }
    }
}
