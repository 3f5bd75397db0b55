package dev.kiln.agent.schedule;

import dev.kiln.os.OsCommand;
import dev.kiln.agent.volume.KilnMount;
import dev.kiln.snapshot.LocalSnapshotFormat;

import java.io.IOException;
import java.io.Reader;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;

/**
 * Scheduled snapshots on the local provider: the volume's loop-device image is copied into the
 * fleet's snapshot store ({@code kiln.snapshots.store}, which {@code kiln launch} sets) in
 * {@link LocalSnapshotFormat}, the same format {@code kiln snapshot} writes, so {@code kiln
 * snapshots}, {@code ROLE:latest} and pruning treat both alike.
 *
 * <p>The fleet's layout is {@code ROOT/snapshots} (the store), {@code ROOT/volumes/vol-local-*}
 * (each with {@code volume.img} and {@code volume.properties}) and {@code ROOT/instances/ID}.
 */
public final class LocalSnapshotBackend implements SnapshotBackend {

    private static final Duration COPY_TIMEOUT = Duration.ofHours(2);

    private final Path store;
    private final Path sysfsRoot;
    private final String instanceId;

    /**
     * @param store      the fleet's snapshot store
     * @param sysfsRoot  where sysfs is (a loop device's backing file is read there)
     * @param instanceId this instance's id (recorded as source-instance)
     */
    public LocalSnapshotBackend(Path store, Path sysfsRoot, String instanceId) {
        this.store = store;
        this.sysfsRoot = sysfsRoot;
        this.instanceId = instanceId;
    }

    @Override
    public Target target(String role, KilnMount mount) throws IOException {
        Path backing = backingFile(mount.deviceName());
        Path vdir = backing.getParent();
        if (!backing.getFileName().toString().equals(LocalSnapshotFormat.IMAGE) || vdir == null
                || !vdir.getFileName().toString().startsWith("vol-local-")
                || !Files.isRegularFile(vdir.resolve("volume.properties"), LinkOption.NOFOLLOW_LINKS)) {
            throw new IOException(mount.mountPoint() + " is " + mount.device() + " over " + backing
                    + ", not a local fleet volume (ROOT/volumes/vol-local-*/volume.img); only those are snapshotted into "
                    + store);
        }
        Properties vp = load(vdir.resolve("volume.properties"));
        Properties ip = instanceProperties();
        return new Target(role, mount.mountPoint(), vdir.getFileName().toString(), vp.getProperty("collection", "").strip(),
                ip.getProperty("role", ""), backing.toString());
    }

    @Override
    public Taken create(Target target) throws IOException {
        String id = LocalSnapshotFormat.newId();
        Path image = Path.of(target.source());
        Instant started = Instant.now();
        Path tmp = LocalSnapshotFormat.partial(store, id);
        Files.createDirectories(tmp);
        Instant[] newest = {Instant.EPOCH};
        String before = LocalSnapshotFormat.imageStamp(image, newest);
        OsCommand.Result r = OsCommand.run(COPY_TIMEOUT, List.of("cp", "--sparse=always", "--reflink=auto",
                image.toString(), tmp.resolve(LocalSnapshotFormat.IMAGE).toString()));
        if (!r.ok()) {
            discard(tmp);
            throw new IOException("copying " + image + " failed: " + r.describe());
        }
        String after = LocalSnapshotFormat.imageStamp(image, newest);
        Properties pending = new Properties();
        pending.setProperty("started", started.toString());
        pending.setProperty("volume-stamp", before != null && before.equals(after) ? before : "");
        LocalSnapshotFormat.store(pending, tmp.resolve(".pending"), "kiln-agent: a scheduled snapshot being made");
        return new Taken(id, started, true, target.collection(), "pending");
    }

    @Override
    public Taken finish(Target target, Taken taken) throws IOException {
        Path tmp = LocalSnapshotFormat.partial(store, taken.id());
        try {
            Properties pending = load(tmp.resolve(".pending"));
            Files.delete(tmp.resolve(".pending"));
            LocalSnapshotFormat.replayJournal(tmp.resolve(LocalSnapshotFormat.IMAGE));
            Path vdir = Path.of(target.source()).getParent();
            Properties vp = load(vdir.resolve("volume.properties"));
            Map<String, String> labels = new LinkedHashMap<>();
            Properties ip = instanceProperties();
            ip.stringPropertyNames().stream().filter(k -> k.startsWith("label."))
                    .forEach(k -> labels.put(k.substring("label.".length()), ip.getProperty(k)));
            String stamp = pending.getProperty("volume-stamp", "");
            LocalSnapshotFormat.publish(store, new LocalSnapshotFormat.Fields(taken.id(), target.role(), target.volumeId(),
                    instanceId, target.instanceRole(), "", target.collection(), taken.started(),
                    vp.getProperty("size-gib", "0"), labels, stamp.isEmpty() ? null : stamp, true));
            return new Taken(taken.id(), taken.started(), true, target.collection(), "completed");
        } catch (IOException | RuntimeException e) {
            discard(tmp);
            throw e;
        }
    }

    @Override
    public void abandon(Target target, Taken taken) {
        discard(LocalSnapshotFormat.partial(store, taken.id()));
    }

    @Override
    public List<Taken> list(Target target) throws IOException {
        List<Taken> out = new ArrayList<>();
        if (!Files.isDirectory(store)) {
            return out;
        }
        try (DirectoryStream<Path> dirs = Files.newDirectoryStream(store, LocalSnapshotFormat.ID_PREFIX + "*")) {
            for (Path d : dirs) {
                Path f = d.resolve(LocalSnapshotFormat.FILE);
                if (!Files.isDirectory(d, LinkOption.NOFOLLOW_LINKS) || !Files.isRegularFile(f, LinkOption.NOFOLLOW_LINKS)) {
                    continue;
                }
                Properties p;
                Instant started;
                try {
                    p = load(f);
                    started = Instant.parse(p.getProperty("started", "").strip());
                } catch (IOException | RuntimeException e) {
                    continue; // not a readable snapshot: never counted, never deleted
                }
                if (!target.role().equals(p.getProperty("volume-role", "").strip())) {
                    continue;
                }
                String id = d.getFileName().toString();
                // Only snapshots a schedule took of this same volume: never another instance's, never one taken by hand.
                boolean managed = "true".equals(p.getProperty(LocalSnapshotFormat.MANAGED_KEY)) && id.equals(p.getProperty("id"))
                        && "true".equals(p.getProperty(LocalSnapshotFormat.SCHEDULED_KEY))
                        && target.volumeId().equals(p.getProperty("source-volume", "").strip());
                out.add(new Taken(id, started, managed, p.getProperty("collection", "").strip(), "completed"));
            }
        }
        return out;
    }

    @Override
    public void delete(Target target, Taken snapshot) throws IOException {
        Path dir = store.resolve(snapshot.id());
        Properties p = load(dir.resolve(LocalSnapshotFormat.FILE));
        if (!"true".equals(p.getProperty(LocalSnapshotFormat.MANAGED_KEY)) || !snapshot.id().equals(p.getProperty("id"))) {
            throw new IOException("not deleting " + dir + ": it carries no Kiln mark");
        }
        // Out of sight first (a rename), then removed: a half-deleted snapshot is never listed.
        Path gone = store.resolve("." + snapshot.id() + ".deleting");
        Files.move(dir, gone, StandardCopyOption.ATOMIC_MOVE);
        OsCommand.Result r = OsCommand.run(Duration.ofMinutes(10), List.of("rm", "-rf", "--one-file-system", gone.toString()));
        if (!r.ok()) {
            throw new IOException("removing " + gone + " failed: " + r.describe());
        }
    }

    @Override
    public String describe() {
        return "the fleet's snapshot store " + store;
    }

    private Path backingFile(String deviceName) throws IOException {
        Path f = sysfsRoot.resolve("block").resolve(deviceName).resolve("loop").resolve("backing_file");
        if (!deviceName.startsWith("loop") || !Files.isRegularFile(f)) {
            throw new IOException("/dev/" + deviceName + " is not a loop device; on the local provider only loop-device"
                    + " volumes (the agent running as root) are snapshotted");
        }
        return Path.of(Files.readString(f, StandardCharsets.UTF_8).strip());
    }

    private Properties instanceProperties() {
        Path file = store.resolveSibling("instances").resolve(instanceId).resolve("instance.properties");
        try {
            return load(file);
        } catch (IOException e) {
            return new Properties();
        }
    }

    private static Properties load(Path file) throws IOException {
        Properties p = new Properties();
        try (Reader r = Files.newBufferedReader(file, StandardCharsets.UTF_8)) {
            p.load(r);
        } catch (IllegalArgumentException e) {
            throw new IOException("cannot read " + file + ": " + e.getMessage(), e);
        }
        return p;
    }

    private static void discard(Path tmp) {
        try {
            OsCommand.run(Duration.ofMinutes(10), List.of("rm", "-rf", "--one-file-system", tmp.toString()));
        } catch (IOException ignored) {
            // a leftover .partial directory is never listed as a snapshot
        }
    }
}
