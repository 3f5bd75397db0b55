package dev.kiln.controller.local;

import dev.kiln.controller.ExitCodes;
import dev.kiln.controller.KilnException;
import dev.kiln.controller.fleet.FleetSnapshot;
import dev.kiln.controller.fleet.FleetVolume;
import dev.kiln.controller.fleet.ManagedInstance;
import dev.kiln.snapshot.LocalSnapshotFormat;

import java.io.IOException;
import java.io.Reader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Instant;
import java.util.Comparator;
import java.util.HashSet;
import java.util.List;
import java.util.Optional;
import java.util.Properties;
import java.util.Set;
import java.util.function.Consumer;
import java.util.stream.Stream;

/**
 * The local fleet's snapshots: copies of volumes under {@code fleet/snapshots} (reflinks where the
 * filesystem has them), each a directory holding the copy and its {@value #SNAPSHOT_FILE}.
 */
final class LocalSnapshots {

    static final String SNAPSHOT_FILE = LocalSnapshotFormat.FILE;

    private final Path dir;
    private final Consumer<String> narrate;
    /** Snapshot directories already reported as skipped, so one command names each once. */
    private final Set<Path> skipped = new HashSet<>();

    LocalSnapshots(Path dir, Consumer<String> narrate) {
        this.dir = dir;
        this.narrate = narrate;
    }

    /** A snapshot's directory. */
    Path dir(String id) {
        return dir.resolve(id);
    }

    /** Copies a volume (its image, or its data directory {@code vdir}) into a new snapshot. */
    FleetSnapshot create(FleetVolume volume, Path vdir, ManagedInstance instance, String buildId) {
        String id = LocalSnapshotFormat.newId();
        Properties vp = RecordFiles.load(vdir.resolve(LocalVolumes.RECORD));
        Instant now = Instant.now();
        try {
            Path tmp = Files.createDirectories(LocalSnapshotFormat.partial(this.dir, id));
            boolean image = vp.getProperty("kind").equals("image");
            String before = VolumeStamp.of(vdir);
            String copy = image ? LocalSnapshotFormat.IMAGE : LocalSnapshotFormat.DATA;
            copy(vdir.resolve(copy), tmp.resolve(copy));
            String after = VolumeStamp.of(vdir);
            if (image) {
                replayJournal(tmp.resolve(copy));
            }
            // A stamp only when nothing was written during the copy: the volume, as long as it keeps
            // this stamp, is in this snapshot.
            Path dir = LocalSnapshotFormat.publish(this.dir, new LocalSnapshotFormat.Fields(id, volume.roleOrId(), volume.id(),
                    instance.id(), instance.role(), buildId, volume.collection(), now, vp.getProperty("size-gib", "0"),
                    instance.labels(), before != null && before.equals(after) ? before : null));
            return read(dir).orElseThrow(() -> new KilnException(ExitCodes.FAILURE, "snapshot " + id
                    + " was written but cannot be read back from " + dir));
        } catch (IOException e) {
            throw new KilnException(ExitCodes.FAILURE, "cannot snapshot " + volume.id() + ": " + e.getMessage(), e);
        }
    }

    /**
     * Leaves an ext4 copy a clean filesystem: a copy of a mounted (frozen) filesystem may still
     * hold a journal to replay, which its first mount would replay, even read-only; replayed here,
     * a restored copy is written by nothing but its mounts' superblock and journal. A copy that is
     * not ext4 (or not formatted) is left as it is.
     */
    static void replayJournal(Path copy) throws IOException {
        LocalSnapshotFormat.replayJournal(copy);
    }

    /**
     * The snapshots under {@code fleet/snapshots}, newest first: Kiln's (marked), and well-formed
     * unmarked ones (by hand, or from a Kiln before the mark) with {@code managed} false, which
     * can be listed and restored by id but are never pruned or picked as latest. A directory
     * whose {@value #SNAPSHOT_FILE} is missing or malformed is skipped and named on stderr.
     */
    List<FleetSnapshot> list(String volumeRole) {
        if (!Files.isDirectory(dir)) {
            return List.of();
        }
        try (Stream<Path> all = Files.list(dir)) {
            return all.filter(p -> p.getFileName().toString().startsWith("snap-local-"))
                    .sorted()
                    .map(this::read)
                    .flatMap(Optional::stream)
                    .filter(s -> volumeRole == null || s.volumeRole().equals(volumeRole))
                    .sorted(Comparator.comparing(FleetSnapshot::startTime).reversed())
                    .toList();
        } catch (IOException e) {
            throw new KilnException(ExitCodes.FAILURE, "cannot list " + dir + ": " + e.getMessage(), e);
        }
    }

    /** A snapshot directory as a snapshot, or empty (named on stderr) when it is not a readable one. */
    Optional<FleetSnapshot> read(Path dir) {
        Properties p = new Properties();
        String problem = null;
        Path file = dir.resolve(SNAPSHOT_FILE);
        if (!Files.isDirectory(dir, java.nio.file.LinkOption.NOFOLLOW_LINKS)) {
            problem = "not a directory";
        } else if (!Files.isRegularFile(file, java.nio.file.LinkOption.NOFOLLOW_LINKS)) {
            problem = "it has no " + SNAPSHOT_FILE;
        } else {
            try (Reader r = Files.newBufferedReader(file, StandardCharsets.UTF_8)) {
                p.load(r);
                problem = malformed(p);
            } catch (IOException | IllegalArgumentException e) {
                problem = "cannot read " + SNAPSHOT_FILE + " (" + e.getMessage() + ")";
            }
        }
        if (problem != null) {
            if (skipped.add(dir)) {
                narrate.accept("skipping " + dir + ": " + problem);
            }
            return Optional.empty();
        }
        String id = dir.getFileName().toString();
        boolean managed = "true".equals(p.getProperty(LocalProvider.MANAGED_KEY)) && id.equals(p.getProperty("id"));
        return Optional.of(new FleetSnapshot(id, p.getProperty("volume-role"), "completed", "100%",
                Long.parseLong(p.getProperty("size-gib", "0").strip()), Instant.parse(p.getProperty("started").strip()),
                p.getProperty("source-instance", ""), p.getProperty("build-id", ""), managed,
                p.getProperty("collection", "").strip()));
    }

    /** What is wrong with a snapshot's properties, or null when nothing is. */
    static String malformed(Properties p) {
        for (String key : List.of("volume-role", "started")) {
            if (p.getProperty(key, "").isBlank()) {
                return SNAPSHOT_FILE + " has no '" + key + "'";
            }
        }
        try {
            Instant.parse(p.getProperty("started").strip());
        } catch (java.time.format.DateTimeParseException e) {
            return SNAPSHOT_FILE + " has started=" + p.getProperty("started") + ", not an ISO-8601 time";
        }
        try {
            Long.parseLong(p.getProperty("size-gib", "0").strip());
        } catch (NumberFormatException e) {
            return SNAPSHOT_FILE + " has size-gib=" + p.getProperty("size-gib") + ", not a number";
        }
        return null;
    }

    /** Deletes a snapshot; only one that carries Kiln's mark (read again here, just before). */
    void delete(FleetSnapshot s) {
        Path dir = dir(s.id());
        if (!read(dir).map(FleetSnapshot::managed).orElse(false)) {
            throw new KilnException(ExitCodes.REFUSED, "not deleting " + dir + ": it carries no Kiln mark (made by hand, or"
                    + " by a Kiln from before the mark); delete it yourself if it is not needed");
        }
        try {
            // Out of sight first (a rename), then removed: a half-deleted snapshot is never listed.
            Path gone = dir.resolveSibling("." + s.id() + ".deleting");
            Files.move(dir, gone, StandardCopyOption.ATOMIC_MOVE);
            LocalTools.run("rm", "-rf", "--one-file-system", gone.toString());
        } catch (IOException e) {
            throw new KilnException(ExitCodes.FAILURE, "cannot delete snapshot " + s.id() + ": " + e.getMessage(), e);
        }
    }

    /**
     * Refuses, before anything is created, a snapshot of the other kind: one taken without root
     * is a directory copy and one taken as root a volume image, and neither restores as the other.
     */
    static void refuseOtherKind(Path snapshot, String role, boolean loops) {
        if (snapshot == null) {
            return;
        }
        boolean image = Files.isRegularFile(snapshot.resolve("volume.img"), java.nio.file.LinkOption.NOFOLLOW_LINKS);
        boolean data = Files.isDirectory(snapshot.resolve("data"), java.nio.file.LinkOption.NOFOLLOW_LINKS);
        if (loops && !image) {
            throw new KilnException(ExitCodes.REFUSED, "snapshot " + snapshot.getFileName() + " of " + role + " holds no volume"
                    + " image (volume.img)" + (data ? ": it is a directory copy, taken without root; restore it with"
                    + " KILN_LOCAL_VOLUMES=dirs" : "") + "; nothing was created");
        }
        if (!loops && !data) {
            throw new KilnException(ExitCodes.REFUSED, "snapshot " + snapshot.getFileName() + " of " + role + " holds no data"
                    + " directory" + (image ? ": it is a volume image, taken as root; restore it as root" : "")
                    + "; nothing was created");
        }
    }

    static void copy(Path from, Path to) throws IOException {
        if (Files.isDirectory(from)) {
            LocalTools.run("cp", "-a", "--reflink=auto", from.toString(), to.toString());
        } else {
            LocalTools.run("cp", "--sparse=always", "--reflink=auto", from.toString(), to.toString());
        }
    }
}
