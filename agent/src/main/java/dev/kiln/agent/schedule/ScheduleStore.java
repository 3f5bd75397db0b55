package dev.kiln.agent.schedule;

import org.yaml.snakeyaml.DumperOptions;
import org.yaml.snakeyaml.LoaderOptions;
import org.yaml.snakeyaml.Yaml;
import org.yaml.snakeyaml.constructor.SafeConstructor;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The schedules, kept in {@code <state-dir>/schedules/schedules.yml}: a directory and file only
 * root reads (they hold the pre and post commands), replaced atomically and durably, so a power
 * cut leaves the old list or the new one.
 */
public final class ScheduleStore {

    private final Path file;

    /**
     * What the file holds.
     *
     * @param schedules   the schedules, by role in the order they were set
     * @param settingsKey a digest of the kiln.schedules setting last applied (applied once, so a
     *                    schedule turned off at run time stays off across restarts)
     */
    public record Contents(List<ScheduleState> schedules, String settingsKey) {
    }

    public ScheduleStore(Path stateDir) {
        this.file = stateDir.resolve("schedules").resolve("schedules.yml");
    }

    /** The file's path. */
    public Path file() {
        return file;
    }

    /** What the file holds; empty when there is none. */
    public synchronized Contents load() throws IOException {
        if (!Files.exists(file, LinkOption.NOFOLLOW_LINKS)) {
            return new Contents(List.of(), "");
        }
        if (!Files.isRegularFile(file, LinkOption.NOFOLLOW_LINKS)) {
            throw new IOException(file + " is not a regular file");
        }
        Object doc;
        try {
            doc = new Yaml(new SafeConstructor(new LoaderOptions())).load(Files.readString(file, StandardCharsets.UTF_8));
        } catch (RuntimeException e) {
            throw new IOException("cannot read " + file + ": " + e.getMessage(), e);
        }
        if (!(doc instanceof Map<?, ?> top)) {
            return new Contents(List.of(), "");
        }
        List<ScheduleState> out = new ArrayList<>();
        if (top.get("schedules") instanceof List<?> list) {
            for (Object o : list) {
                if (o instanceof Map<?, ?> m) {
                    try {
                        out.add(state(m));
                    } catch (RuntimeException e) {
                        throw new IOException("cannot read a schedule in " + file + " (" + e.getMessage() + ")", e);
                    }
                }
            }
        }
        return new Contents(out, top.get("settings-key") == null ? "" : String.valueOf(top.get("settings-key")));
    }

    /** Replaces the file's contents. */
    public synchronized void save(Contents contents) throws IOException {
        Path dir = file.getParent();
        if (!Files.isDirectory(dir, LinkOption.NOFOLLOW_LINKS)) {
            // Only this directory is root's alone: the state directory above it must stay passable
            // for the build user, who reaches its work directory and boot script through it.
            Files.createDirectories(dir.getParent());
            Files.createDirectory(dir, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwx------")));
        }
        Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwx------"));
        List<Object> list = new ArrayList<>();
        contents.schedules().forEach(s -> list.add(map(s)));
        Map<String, Object> top = new LinkedHashMap<>();
        top.put("settings-key", contents.settingsKey());
        top.put("schedules", list);
        DumperOptions options = new DumperOptions();
        options.setDefaultFlowStyle(DumperOptions.FlowStyle.BLOCK);
        String text = "# kiln-agent's snapshot schedules (kiln schedule); written by the agent\n" + new Yaml(options).dump(top);
        Path tmp = dir.resolve("schedules.yml.tmp");
        Files.deleteIfExists(tmp);
        try (FileChannel ch = FileChannel.open(tmp, java.util.Set.of(StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE),
                PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")))) {
            ByteBuffer bytes = StandardCharsets.UTF_8.encode(text);
            while (bytes.hasRemaining()) {
                ch.write(bytes);
            }
            ch.force(true);
        }
        Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        try (FileChannel d = FileChannel.open(dir, StandardOpenOption.READ)) {
            d.force(true);
        }
    }

    private static Map<String, Object> map(ScheduleState s) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("role", s.spec().role());
        m.put("every-ms", s.spec().every().toMillis());
        m.put("at", s.spec().at());
        m.put("keep", s.spec().keep());
        m.put("pre", s.spec().pre());
        m.put("post", s.spec().post());
        m.put("set-at", s.setAt().toString());
        m.put("next-run", s.nextRun().toString());
        m.put("last-run", s.lastRun() == null ? "" : s.lastRun().toString());
        m.put("last-ok", s.lastOk());
        m.put("last-result", s.lastResult());
        m.put("last-snapshot", s.lastSnapshot());
        m.put("failures", s.failures());
        return m;
    }

    private static ScheduleState state(Map<?, ?> m) {
        ScheduleSpec spec = new ScheduleSpec(text(m, "role"), Duration.ofMillis(Long.parseLong(text(m, "every-ms"))),
                text(m, "at"), Integer.parseInt(text(m, "keep")), text(m, "pre"), text(m, "post")).validate();
        String last = text(m, "last-run");
        return new ScheduleState(spec, Instant.parse(text(m, "set-at")), Instant.parse(text(m, "next-run")),
                last.isEmpty() ? null : Instant.parse(last), Boolean.parseBoolean(text(m, "last-ok")), text(m, "last-result"),
                text(m, "last-snapshot"), Integer.parseInt(text(m, "failures")));
    }

    private static String text(Map<?, ?> m, String key) {
        Object v = m.get(key);
        if (v instanceof byte[] b) {
            return new String(b, StandardCharsets.UTF_8); // SnakeYAML writes a string with control characters as !!binary
        }
        return v == null ? "" : String.valueOf(v);
    }
}
