package dev.kiln.agent.volume;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * The mounts Kiln made, kept on disk ({@code <state-dir>/volumes/mounts}, one tab-separated line
 * each, replaced atomically and durably) so that an agent restart still knows which mounts are
 * its own.
 */
public final class MountRegistry {

    private final Path file;
    private final boolean persist;
    private final Map<Path, KilnMount> mounts = new LinkedHashMap<>();

    /** Loads the registry under the state directory (empty if there is none yet). */
    public MountRegistry(Path stateDir) throws IOException {
        this(stateDir, true);
    }

    /**
     * A registry that starts empty and keeps this run's mounts in memory only, leaving the file
     * under the state directory as it is: for an agent that cannot read that file and must still
     * start.
     */
    public static MountRegistry unread(Path stateDir) {
        try {
            return new MountRegistry(stateDir, false);
        } catch (IOException e) {
            throw new IllegalStateException(e); // nothing is read
        }
    }

    private MountRegistry(Path stateDir, boolean load) throws IOException {
        this.file = stateDir.resolve("volumes").resolve("mounts");
        this.persist = load;
        if (load && Files.exists(file)) {
            for (String line : Files.readAllLines(file, StandardCharsets.UTF_8)) {
                String[] f = line.split("\t", -1);
                if (f.length != 7 || f[0].isEmpty()) {
                    continue;
                }
                KilnMount m = new KilnMount(Path.of(f[0]), f[1], f[2], f[3], f[4],
                        f[5].isEmpty() ? null : Path.of(f[5]), f[6].isEmpty() ? null : Path.of(f[6]));
                mounts.put(m.mountPoint(), m);
            }
        }
    }

    public synchronized Optional<KilnMount> get(Path mountPoint) {
        return Optional.ofNullable(mounts.get(mountPoint));
    }

    public synchronized List<KilnMount> all() {
        return new ArrayList<>(mounts.values());
    }

    public synchronized void put(KilnMount m) throws IOException {
        mounts.put(m.mountPoint(), m);
        save();
    }

    public synchronized void remove(Path mountPoint) throws IOException {
        if (mounts.remove(mountPoint) != null) {
            save();
        }
    }

    private void save() throws IOException {
        if (!persist) {
            return;
        }
        Files.createDirectories(file.getParent());
        StringBuilder b = new StringBuilder();
        for (KilnMount m : mounts.values()) {
            b.append(String.join("\t", m.mountPoint().toString(), m.device(), m.deviceName(), m.volumeId(),
                    m.filesystem(), m.lowerDir() == null ? "" : m.lowerDir().toString(),
                    m.upperDir() == null ? "" : m.upperDir().toString())).append('\n');
        }
        // Durable before it counts: the new contents reach the disk before the rename, and the
        // rename itself (the directory entry) after it, so a power cut leaves the old list or the
        // new one, never an empty file, and a restart still knows which mounts are Kiln's.
        Path tmp = file.resolveSibling("mounts.tmp");
        try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                StandardOpenOption.TRUNCATE_EXISTING)) {
            ByteBuffer bytes = StandardCharsets.UTF_8.encode(b.toString());
            while (bytes.hasRemaining()) {
                ch.write(bytes);
            }
            ch.force(true);
        }
        Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        try (FileChannel dir = FileChannel.open(file.getParent(), StandardOpenOption.READ)) {
            dir.force(true);
        }
    }
}
