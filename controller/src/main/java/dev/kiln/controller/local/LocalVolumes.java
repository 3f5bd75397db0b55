package dev.kiln.controller.local;

import dev.kiln.controller.ExitCodes;
import dev.kiln.controller.KilnException;
import dev.kiln.controller.fleet.InstanceLayout;
import dev.kiln.controller.fleet.StoredVolume;
import dev.kiln.controller.fleet.VolumeSpec;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Properties;
import java.util.function.Consumer;
import java.util.function.UnaryOperator;
import java.util.stream.Stream;

/**
 * The fleet's volumes, one directory {@code vol-local-XXXXXXXX} each under {@code fleet/volumes}:
 * its record ({@value #RECORD}) and its data, a sparse image for a loop device (root) or a plain
 * {@code data} directory. Makes a launch's new volumes, attaches existing ones, lists and
 * deletes them. Who holds a volume is the provider's to say (it reads the instances), so the
 * methods that refuse a held volume are handed the holder.
 */
final class LocalVolumes {

    /** A volume's record: role, collection, kind, size, the instance that holds it, its fate's marks. */
    static final String RECORD = "volume.properties";

    private final Path dir;

    LocalVolumes(Path dir) {
        this.dir = dir;
    }

    /** The directory of all volumes. */
    Path dir() {
        return dir;
    }

    /** The directory of one volume. */
    Path dir(String id) {
        return dir.resolve(id);
    }

    /**
     * One volume set up for a launch.
     *
     * @param id         vol-local-...
     * @param dir        its directory
     * @param record     its record as written, for the launch's attach stamp
     * @param device     its loop device, or null for a directory volume
     * @param collection its collection
     * @param layout     what the agent mounts or joins
     */
    record Attached(String id, Path dir, Properties record, String device, String collection, InstanceLayout.Volume layout) {
    }

    /**
     * Attaches an existing volume ({@link #refuseUnattachable} has passed it) to instance
     * {@code instanceId}. A loop device it gets is added to {@code devices} as soon as it exists.
     */
    Attached attach(VolumeSpec v, String instanceId, Path instanceDir, boolean loops, List<String> devices) throws IOException {
        Path vdir = dir(v.volumeId());
        Properties vp = RecordFiles.load(vdir.resolve(RECORD));
        vp.setProperty("instance", instanceId);
        vp.setProperty("state", "in-use");
        // What it held before this launch is no snapshot's and not blank: only a snapshot or proof frees it.
        vp.setProperty("attached-existing", "true");
        vp.remove("kept");
        vp.remove("ended-with");
        if (v.keep()) {
            vp.setProperty("keep", "true");
        }
        String device = null;
        InstanceLayout.Volume layout;
        if (loops) {
            device = LoopDevices.attach(vdir.resolve("volume.img"));
            devices.add(device);
            // May be formatted only if the agent proves it blank (an image of holes); else mounted as it is.
            layout = new InstanceLayout.Volume(v.role(), "", device, true);
        } else {
            Path mnt = Files.createDirectories(instanceDir.resolve("mnt"));
            Files.createSymbolicLink(mnt.resolve(v.role()), vdir.resolve("data"));
            layout = new InstanceLayout.Volume(v.role(), "", "", true);
        }
        RecordFiles.store(vp, vdir.resolve(RECORD));
        return new Attached(v.volumeId(), vdir, vp, device, vp.getProperty("collection", ""), layout);
    }

    /**
     * Makes a new volume for instance {@code instanceId}: blank, or a copy of the snapshot
     * {@code from}. A loop device it gets is added to {@code devices} as soon as it exists.
     *
     * @param instanceRole the launched role: a restored directory volume with tup state warns unless it is served
     */
    Attached create(VolumeSpec v, String instanceId, String instanceRole, Path instanceDir, Path from, boolean loops,
                    Instant now, List<String> devices, Consumer<String> narrate) throws IOException {
        String volumeId = "vol-local-" + LocalProvider.hex(4);
        Path vdir = Files.createDirectories(dir(volumeId));
        Properties vp = new Properties();
        vp.setProperty("role", v.role());
        vp.setProperty("collection", v.collection());
        vp.setProperty("created", now.toString());
        vp.setProperty("kind", loops ? "image" : "dir");
        vp.setProperty("instance", instanceId);
        vp.setProperty("state", "in-use");
        if (v.keep()) {
            vp.setProperty("keep", "true");
        }
        if (from != null) {
            vp.setProperty("from-snapshot", from.getFileName().toString());
        }
        long sizeGiB = v.sizeGiB();
        String device = null;
        InstanceLayout.Volume layout;
        if (loops) {
            Path image = vdir.resolve("volume.img");
            if (from != null) {
                LocalSnapshots.copy(from.resolve("volume.img"), image);
            } else {
                Files.createFile(image);
            }
            sizeGiB = extendSparse(image, sizeGiB) >> 30;
            device = LoopDevices.attach(image);
            devices.add(device);
            // The agent finds it by device: a loop device has no EBS identity to check.
            layout = new InstanceLayout.Volume(v.role(), "", device, from == null);
        } else {
            Path data = vdir.resolve("data");
            if (from != null) {
                LocalSnapshots.copy(from.resolve("data"), data);
                if (holdsTupState(data) && !instanceRole.equals("server")) {
                    narrate.accept("warning: " + v.role() + " holds tup state, and without root a restored volume is a"
                            + " file copy: every file's change time (ctime) is new, so tup sees all of it as modified"
                            + " and will refuse to build over it. Serving it is fine; to build incrementally, run as"
                            + " root (volumes are then loop-device images, copied whole), or launch with a new "
                            + v.role() + " volume");
                }
            } else {
                Files.createDirectories(data);
                buildUserOwns(data);
            }
            Path mnt = Files.createDirectories(instanceDir.resolve("mnt"));
            Files.createSymbolicLink(mnt.resolve(v.role()), data);
            layout = new InstanceLayout.Volume(v.role(), "", "", from == null);
        }
        vp.setProperty("size-gib", Long.toString(sizeGiB));
        RecordFiles.store(vp, vdir.resolve(RECORD));
        return new Attached(volumeId, vdir, vp, device, v.collection(), layout);
    }

    /**
     * Refuses, before anything is made, an existing volume a launch cannot attach: one this fleet
     * does not hold, one of the other kind (an image without root's loop devices, a directory with
     * them), and one another instance uses.
     *
     * @param holder the pending or running instance holding a volume, or null ({@link LocalProvider#holder})
     */
    void refuseUnattachable(VolumeSpec v, boolean loops, UnaryOperator<String> holder) {
        Path vdir = dir(v.volumeId());
        if (!v.volumeId().startsWith("vol-local-") || !Files.isRegularFile(vdir.resolve(RECORD), LinkOption.NOFOLLOW_LINKS)) {
            throw new KilnException(ExitCodes.NOT_FOUND, "no local volume " + v.volumeId() + " in " + dir
                    + " (`kiln volumes --fleet` lists the fleet's volumes); nothing was launched");
        }
        String kind = RecordFiles.load(vdir.resolve(RECORD)).getProperty("kind", "");
        if (!kind.equals(loops ? "image" : "dir")) {
            throw new KilnException(ExitCodes.REFUSED, v.volumeId() + " is " + (kind.equals("image")
                    ? "an image for a loop device, and this launch uses directories (no root, or KILN_LOCAL_VOLUMES=dirs)"
                    : "a directory, and this launch uses loop devices (root)") + "; launch it the way it was made; nothing was launched");
        }
        String held = holder.apply(v.volumeId());
        if (held != null) {
            throw new KilnException(ExitCodes.REFUSED, v.volumeId() + " is in use by " + held + "; a volume is attached to one"
                    + " instance at a time: end that one first (`kiln terminate " + held + "`; a kept volume stays); nothing was launched");
        }
        List<String> devices = LoopDevices.over(vdir.resolve("volume.img"));
        if (!devices.isEmpty()) {
            throw new KilnException(ExitCodes.REFUSED, v.volumeId() + " is still attached to " + String.join(", ", devices)
                    + " (`kiln prune` detaches loop devices no instance holds); nothing was launched");
        }
    }

    /** The instance a volume's record names while it is not available, or null. */
    String recordedInstance(String volumeId) {
        Path file = dir(volumeId).resolve(RECORD);
        if (!Files.isRegularFile(file)) {
            return null;
        }
        Properties vp = RecordFiles.load(file);
        String instance = vp.getProperty("instance");
        return instance == null || "available".equals(vp.getProperty("state")) ? null : instance;
    }

    /** A volume's size from its record, or 0 when unknown. */
    long sizeGiB(String volumeId) {
        Path file = dir(volumeId).resolve(RECORD);
        return Files.isRegularFile(file) ? sizeGiB(RecordFiles.load(file)) : 0;
    }

    private static long sizeGiB(Properties vp) {
        try {
            return Long.parseLong(vp.getProperty("size-gib", "0").strip());
        } catch (NumberFormatException e) {
            return 0;
        }
    }

    /** Every volume directory of the fleet, oldest first; {@code holder} names the instance using each. */
    List<StoredVolume> list(UnaryOperator<String> holder) {
        List<StoredVolume> out = new ArrayList<>();
        if (!Files.isDirectory(dir)) {
            return out;
        }
        try (Stream<Path> all = Files.list(dir)) {
            for (Path v : all.sorted().toList()) {
                String id = v.getFileName().toString();
                if (!id.startsWith("vol-local-") || !Files.isDirectory(v, LinkOption.NOFOLLOW_LINKS)) {
                    continue;
                }
                Path file = v.resolve(RECORD);
                Properties vp = Files.isRegularFile(file) ? RecordFiles.load(file) : new Properties();
                String kept = vp.getProperty("kept", "");
                out.add(new StoredVolume(id, vp.getProperty("role", ""), sizeGiB(vp), holder.apply(id),
                        vp.getProperty("created") == null ? null : Instant.parse(vp.getProperty("created")),
                        "true".equals(vp.getProperty("keep")), kept.startsWith("unsaved") ? kept : "",
                        vp.getProperty("created") != null));
            }
        } catch (IOException e) {
            throw new KilnException(ExitCodes.FAILURE, "cannot list " + dir + ": " + e.getMessage(), e);
        }
        out.sort(Comparator.comparing((StoredVolume v) -> v.created() == null ? Instant.EPOCH : v.created()));
        return out;
    }

    /** Refuses a name that is not one of this fleet's volume directories. */
    void requireExists(String volumeId) {
        if (!volumeId.matches("vol-local-[0-9a-f]{8}") || !Files.isDirectory(dir(volumeId), LinkOption.NOFOLLOW_LINKS)) {
            throw new KilnException(ExitCodes.NOT_FOUND, "no local volume " + volumeId + " (`kiln volumes --fleet` lists the fleet's volumes)");
        }
    }

    /**
     * Deletes a volume ({@link #requireExists} has passed it) that no instance holds and no loop
     * device carries; one Kiln did not record is deleted only with {@code force}.
     *
     * @param holder the pending or running instance holding it, or null
     * @return what was deleted, for the user
     */
    String delete(String volumeId, boolean force, String holder) {
        Path vdir = dir(volumeId);
        if (holder != null) {
            throw new KilnException(ExitCodes.REFUSED, volumeId + " is in use by " + holder + "; end it first (`kiln terminate "
                    + holder + "`), then delete the volume; nothing was deleted");
        }
        List<String> devices = LoopDevices.over(vdir.resolve("volume.img"));
        if (!devices.isEmpty()) {
            throw new KilnException(ExitCodes.REFUSED, volumeId + " is still attached to " + String.join(", ", devices)
                    + "; nothing was deleted");
        }
        Path file = vdir.resolve(RECORD);
        Properties vp = Files.isRegularFile(file) ? RecordFiles.load(file) : new Properties();
        if (vp.getProperty("created") == null && !force) {
            throw new KilnException(ExitCodes.REFUSED, volumeId + " was not created by Kiln (" + vdir + " has no volume.properties"
                    + " Kiln wrote); look at it, and add --force to delete it all the same; nothing was deleted");
        }
        try {
            Path gone = vdir.resolveSibling("." + volumeId + ".deleting");
            Files.move(vdir, gone, StandardCopyOption.ATOMIC_MOVE);
            LocalTools.run("rm", "-rf", "--one-file-system", gone.toString());
        } catch (IOException e) {
            throw new KilnException(ExitCodes.FAILURE, "cannot delete " + vdir + ": " + e.getMessage()
                    + " (`kiln prune` finishes a deletion cut short)", e);
        }
        String role = vp.getProperty("role", "");
        return "deleted " + volumeId + (role.isEmpty() ? "" : " (" + role + ")")
                + (vp.getProperty("kept", "").startsWith("unsaved") ? "; it was unsaved: " + vp.getProperty("kept") : "");
    }

    /**
     * Without mounts (directories): sources and builds are joined by copying sources into the
     * builds volume's work tree (rsync --update: unchanged files keep their times, so tup sees no
     * change; a pushed change is kept), since an unprivileged user cannot mount an overlay.
     */
    static InstanceLayout withoutMounts(Path instanceDir, InstanceLayout planned, Consumer<String> narrate) throws IOException {
        Path sources = instanceDir.resolve("mnt/sources");
        Path builds = instanceDir.resolve("mnt/builds");
        boolean both = Files.exists(sources) && Files.exists(builds);
        String work = planned.workTree();
        if (both) {
            work = builds.resolve("work").toString();
            Files.createDirectories(Path.of(work));
            narrate.accept("no overlay without root: copying sources into the builds volume's work tree (rsync --update)");
            LocalTools.run("rsync", "-a", "--update", sources.toRealPath() + "/", work + "/");
        } else if (work != null) {
            Files.createDirectories(Path.of(work));
        }
        if (work != null) {
            buildUserOwns(Path.of(work));
        }
        return new InstanceLayout(List.of(), work, planned.sources() == null ? null : work, planned.outputs() == null ? null : work);
    }

    /**
     * Grows an image file to {@code sizeGiB} (never shrinks it) by moving its end, which leaves
     * the new part a hole: the agent takes an image with no data as proof that it is blank, where
     * a byte written at the end (even a zero) would be data and cost it a read of the whole image.
     *
     * @return the file's size in bytes
     */
    static long extendSparse(Path image, long sizeGiB) throws IOException {
        try (RandomAccessFile raf = new RandomAccessFile(image.toFile(), "rw")) {
            if (sizeGiB > 0 && raf.length() < (sizeGiB << 30)) {
                raf.setLength(sizeGiB << 30);
            }
            return raf.length();
        }
    }

    /** Whether a directory holds a tup database near its top (a built work tree). */
    private static boolean holdsTupState(Path dir) {
        try (Stream<Path> found = Files.find(dir, 4, (p, a) -> a.isDirectory() && p.getFileName().toString().equals(".tup"))) {
            return found.findAny().isPresent();
        } catch (IOException e) {
            return false;
        }
    }

    /**
     * As root, the agent builds and takes uploads as its unprivileged user (`kiln`), so a new
     * directory volume must be that user's, as a new filesystem's root is on a loop device.
     * Without root everything is the caller's already.
     */
    private static void buildUserOwns(Path dir) throws IOException {
        if (!LocalProvider.isRoot()) {
            return;
        }
        String entry = LocalTools.run("getent", "passwd", "kiln").strip();
        String[] f = entry.split(":");
        LocalTools.run("chown", f[2] + ":" + f[3], dir.toString());
    }
}
