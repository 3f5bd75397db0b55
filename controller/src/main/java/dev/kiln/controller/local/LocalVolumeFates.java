package dev.kiln.controller.local;

import dev.kiln.controller.fleet.FleetSnapshot;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Properties;
import java.util.TreeMap;

/**
 * What becomes of the local fleet's volumes (under {@code fleet/volumes}) when their instance has
 * ended: the facts {@link VolumeFate#decide} weighs, gathered from the volume and its snapshots,
 * and the decision carried out.
 */
final class LocalVolumeFates {

    private final Path volumes;
    private final LocalSnapshots snapshots;

    LocalVolumeFates(Path volumes, LocalSnapshots snapshots) {
        this.volumes = volumes;
        this.snapshots = snapshots;
    }

    /** What becomes of a volume whose instance has ended ({@link VolumeFate#decide}). */
    VolumeFate.Fate fate(String volumeId, String role) {
        Path vdir = volumes.resolve(volumeId);
        if (!Files.isDirectory(vdir, java.nio.file.LinkOption.NOFOLLOW_LINKS)) {
            return VolumeFate.Fate.gone(volumeId, role);
        }
        Properties vp = Files.isRegularFile(vdir.resolve(LocalVolumes.RECORD)) ? RecordFiles.load(vdir.resolve(LocalVolumes.RECORD)) : new Properties();
        List<String> devices = LoopDevices.over(vdir.resolve("volume.img"));
        String from = vp.getProperty("from-snapshot");
        boolean sourceKept = from != null && Files.isDirectory(snapshots.dir(from), java.nio.file.LinkOption.NOFOLLOW_LINKS)
                && snapshots.read(snapshots.dir(from)).isPresent();
        Map<String, String> snapshotStamps = new TreeMap<>();
        for (FleetSnapshot s : snapshots.list(null)) {
            if (s.managed()) {
                Properties sp = RecordFiles.load(snapshots.dir(s.id()).resolve(LocalSnapshots.SNAPSHOT_FILE));
                if (volumeId.equals(sp.getProperty("source-volume")) && sp.getProperty("volume-stamp") != null) {
                    snapshotStamps.put(s.id(), sp.getProperty("volume-stamp"));
                }
            }
        }
        String stamp = VolumeStamp.of(vdir);
        return VolumeFate.decide(volumeId, vp.getProperty("role", role), vdir, vp, stamp, devices, sourceKept,
                snapshotStamps, () -> heldIn(volumeId, vdir, stamp, sourceKept ? from : null));
    }

    /**
     * The Kiln snapshot whose copy provably holds all of a volume's image ({@link ImageProof}):
     * its own snapshots, newest first, then the one it was restored from. The image must keep its
     * stamp and stay off every loop device while it is read, or nothing is proved.
     */
    private Optional<String> heldIn(String volumeId, Path vdir, String stamp, String restoredFrom) {
        Path image = vdir.resolve("volume.img");
        if (stamp == null || !Files.isRegularFile(image, java.nio.file.LinkOption.NOFOLLOW_LINKS)) {
            return Optional.empty();
        }
        Map<String, Path> copies = new java.util.LinkedHashMap<>();
        for (FleetSnapshot s : snapshots.list(null)) {
            if (s.managed() && volumeId.equals(RecordFiles.load(snapshots.dir(s.id()).resolve(LocalSnapshots.SNAPSHOT_FILE)).getProperty("source-volume"))) {
                copies.put(s.id(), snapshots.dir(s.id()).resolve("volume.img"));
            }
        }
        if (restoredFrom != null) {
            copies.putIfAbsent(restoredFrom, snapshots.dir(restoredFrom).resolve("volume.img"));
        }
        if (copies.isEmpty()) {
            return Optional.empty();
        }
        Optional<String> held = ImageProof.heldIn(image, copies);
        return held.isPresent() && stamp.equals(VolumeStamp.of(vdir)) && LoopDevices.over(image).isEmpty() ? held : Optional.empty();
    }

    /** Deletes a volume its fate allows to go (out of sight first, then removed), or marks it kept. */
    void apply(VolumeFate.Fate f, String instanceId) throws IOException {
        Path vdir = volumes.resolve(f.volumeId());
        if (!Files.isDirectory(vdir, java.nio.file.LinkOption.NOFOLLOW_LINKS)) {
            return;
        }
        if (f.delete()) {
            Path gone = vdir.resolveSibling("." + f.volumeId() + ".deleting");
            Files.move(vdir, gone, StandardCopyOption.ATOMIC_MOVE);
            LocalTools.run("rm", "-rf", "--one-file-system", gone.toString());
            return;
        }
        Path file = vdir.resolve(LocalVolumes.RECORD);
        Properties vp = Files.isRegularFile(file) ? RecordFiles.load(file) : new Properties();
        vp.setProperty("state", "available");
        vp.setProperty("kept", f.why());
        if (instanceId != null) {
            vp.setProperty("ended-with", instanceId);
        }
        RecordFiles.store(vp, file);
    }
}
