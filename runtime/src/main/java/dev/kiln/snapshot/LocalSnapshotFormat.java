package dev.kiln.snapshot;

import dev.kiln.os.OsCommand;

import java.io.IOException;
import java.io.Writer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.FileTime;
import java.time.Duration;
import java.time.Instant;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.TreeMap;
import java.util.concurrent.ThreadLocalRandom;

/**
 * The local fleet's snapshot format, written by {@code kiln snapshot} (the controller) and by an
 * agent's scheduled snapshots alike: a directory {@code snap-local-HEX} in the fleet's snapshot
 * store holding the copy ({@value #IMAGE} or {@value #DATA}) and {@value #FILE}. A snapshot is
 * assembled in a hidden {@code .ID.partial} directory and renamed into place, so it exists whole
 * or not at all.
 */
public final class LocalSnapshotFormat {

    /** The properties file of a snapshot. */
    public static final String FILE = "snapshot.properties";
    /** Every snapshot directory's name starts with this. */
    public static final String ID_PREFIX = "snap-local-";
    /** The key of Kiln's mark; only marked snapshots are pruned or picked as ROLE:latest. */
    public static final String MANAGED_KEY = "managed";
    /** The copy of a loop-device volume's image. */
    public static final String IMAGE = "volume.img";
    /** The copy of a directory volume. */
    public static final String DATA = "data";

    private static final String TOOL_PATH = "/usr/sbin:/usr/bin:/sbin:/bin";

    private LocalSnapshotFormat() {
    }

    /**
     * What a snapshot's {@value #FILE} records.
     *
     * @param id             snap-local-HEX
     * @param volumeRole     the role of the volume it was taken from
     * @param sourceVolume   vol-local-HEX
     * @param sourceInstance the instance it was taken on
     * @param instanceRole   that instance's role (worker, server, ...)
     * @param buildId        the build it holds, or empty
     * @param collection     the volume's collection, or empty
     * @param started        its point in time
     * @param sizeGiB        the volume's size
     * @param labels         the instance's labels
     * @param volumeStamp    the volume's stamp when nothing was written during the copy, or null
     */
    public record Fields(String id, String volumeRole, String sourceVolume, String sourceInstance, String instanceRole,
                         String buildId, String collection, Instant started, String sizeGiB, Map<String, String> labels,
                         String volumeStamp, boolean scheduled) {

        /** A snapshot taken by hand ({@code kiln snapshot}), not by an agent's schedule. */
        public Fields(String id, String volumeRole, String sourceVolume, String sourceInstance, String instanceRole,
                      String buildId, String collection, Instant started, String sizeGiB, Map<String, String> labels,
                      String volumeStamp) {
            this(id, volumeRole, sourceVolume, sourceInstance, instanceRole, buildId, collection, started, sizeGiB, labels,
                    volumeStamp, false);
        }
    }

    /** Marks a snapshot an agent's schedule took. */
    public static final String SCHEDULED_KEY = "scheduled";

    /** A new snapshot id. */
    public static String newId() {
        byte[] b = new byte[4];
        ThreadLocalRandom.current().nextBytes(b);
        return ID_PREFIX + HexFormat.of().formatHex(b);
    }

    /** Where a snapshot is assembled before {@link #publish}. */
    public static Path partial(Path store, String id) {
        return store.resolve("." + id + ".partial");
    }

    /** The properties of a snapshot, carrying Kiln's mark. */
    public static Properties properties(Fields f) {
        Properties sp = new Properties();
        if (f.volumeStamp() != null) {
            sp.setProperty("volume-stamp", f.volumeStamp());
        }
        sp.setProperty("volume-role", f.volumeRole());
        if (f.scheduled()) {
            sp.setProperty(SCHEDULED_KEY, "true"); // what a schedule's retention may delete: its own snapshots only
        }
        sp.setProperty("source-volume", f.sourceVolume());
        sp.setProperty("source-instance", f.sourceInstance());
        sp.setProperty("role", f.instanceRole());
        sp.setProperty("build-id", f.buildId() == null ? "" : f.buildId());
        if (f.collection() != null && !f.collection().isEmpty()) {
            sp.setProperty("collection", f.collection());
        }
        sp.setProperty("started", f.started().toString());
        sp.setProperty("size-gib", f.sizeGiB());
        new TreeMap<>(f.labels()).forEach((k, v) -> sp.setProperty("label." + k, v));
        sp.setProperty(MANAGED_KEY, "true");
        sp.setProperty("id", f.id());
        return sp;
    }

    /** Writes {@value #FILE} into the partial directory and renames it into place. */
    public static Path publish(Path store, Fields f) throws IOException {
        Path tmp = partial(store, f.id());
        store(properties(f), tmp.resolve(FILE), "kiln local provider");
        Path dir = store.resolve(f.id());
        Files.move(tmp, dir, StandardCopyOption.ATOMIC_MOVE);
        return dir;
    }

    /** Writes properties through a temporary file and an atomic rename. */
    public static void store(Properties p, Path file, String comment) throws IOException {
        Path tmp = file.resolveSibling(file.getFileName() + ".tmp");
        try (Writer w = Files.newBufferedWriter(tmp, StandardCharsets.UTF_8)) {
            p.store(w, comment);
        }
        Files.move(tmp, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
    }

    /**
     * An image's stamp, {@code image:SIZE:CTIME} (ctime to the nanosecond, which every write
     * through its loop device moves), or null when it is not a regular file.
     *
     * @param newest receives the image's ctime
     */
    public static String imageStamp(Path image, Instant[] newest) throws IOException {
        if (!Files.isRegularFile(image, LinkOption.NOFOLLOW_LINKS)) {
            return null;
        }
        Instant ctime = ((FileTime) Files.getAttribute(image, "unix:ctime", LinkOption.NOFOLLOW_LINKS)).toInstant();
        newest[0] = ctime;
        return "image:" + Files.size(image) + ":" + ctime.getEpochSecond() + "." + String.format("%09d", ctime.getNano());
    }

    /**
     * Leaves an ext4 copy a clean filesystem: a copy of a mounted (frozen) filesystem may still
     * hold a journal to replay, which its first mount would replay, even read-only. A copy that
     * is not ext2/3/4 is left as it is.
     */
    public static void replayJournal(Path copy) throws IOException {
        OsCommand.Result header = run(List.of("dumpe2fs", "-h", copy.toString()));
        if (header.exitCode() != 0) {
            return; // not an ext2/3/4 filesystem: nothing to replay
        }
        String features = header.output().lines().filter(l -> l.startsWith("Filesystem features:")).findFirst().orElse("");
        if (features.contains("needs_recovery")) {
            // e2fsck exits 0 (nothing to fix) or 1 (the journal was replayed); anything else failed.
            OsCommand.Result r = run(List.of("e2fsck", "-E", "journal_only", "-y", copy.toString()));
            if (r.exitCode() > 1) {
                throw new IOException("e2fsck -E journal_only -y of its copy failed (exit " + r.exitCode() + "): " + r.output().strip());
            }
        }
    }

    /** Runs a tool from {@value #TOOL_PATH} in the C locale, for at most 10 minutes (e2fsck of a large copy). */
    private static OsCommand.Result run(List<String> argv) throws IOException {
        try {
            return OsCommand.run(Duration.ofMinutes(10), Map.of("PATH", TOOL_PATH, "LC_ALL", "C"), argv);
        } catch (java.io.InterruptedIOException e) {
            throw e;
        } catch (IOException e) {
            throw new IOException(argv.get(0) + " is not installed (e2fsprogs): " + e.getMessage(), e);
        }
    }
}
