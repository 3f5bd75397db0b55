package dev.kiln.controller.local;

import dev.kiln.controller.ExitCodes;
import dev.kiln.controller.KilnException;
import dev.kiln.controller.fleet.EndedInstance;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Duration;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Properties;
import java.util.TreeMap;
import java.util.function.Consumer;
import java.util.stream.Stream;

/**
 * The records ended local instances leave under {@code fleet/ended/ID}: how each ended, what
 * became of its volumes, and its logs for {@link #KEEP_LOGS}; the record itself stays for
 * {@link #KEEP_RECORDS}.
 */
final class EndedRecords {

    static final String ENDED_FILE = "ended.properties";
    /** How long an ended instance's logs stay in its record, and how long the record itself stays. */
    static final Duration KEEP_LOGS = Duration.ofDays(14);
    static final Duration KEEP_RECORDS = Duration.ofDays(90);

    private final Path dir;
    private final Consumer<String> narrate;

    EndedRecords(Path dir, Consumer<String> narrate) {
        this.dir = dir;
        this.narrate = narrate;
    }

    /** The record an ended instance left in {@code fleet/ended}, if it is still kept. */
    Optional<EndedInstance> read(String id) {
        if (!LocalProvider.isInstanceId(id)) {
            return Optional.empty();
        }
        Path file = dir.resolve(id).resolve(ENDED_FILE);
        if (!Files.isRegularFile(file, java.nio.file.LinkOption.NOFOLLOW_LINKS)) {
            return Optional.empty();
        }
        try {
            Properties p = RecordFiles.load(file);
            Map<String, String> labels = new TreeMap<>();
            p.stringPropertyNames().stream().filter(k -> k.startsWith("label.")).forEach(k -> labels.put(k.substring(6), p.getProperty(k)));
            List<String> volumes = new ArrayList<>();
            for (int i = 0; p.getProperty("volume." + i) != null; i++) {
                volumes.add(p.getProperty("volume." + i));
            }
            Path logs = file.resolveSibling("logs");
            return Optional.of(new EndedInstance(id, p.getProperty("role", ""), labels, Instant.parse(p.getProperty("launched")),
                    Instant.parse(p.getProperty("ended")), p.getProperty("how", "ended"), volumes,
                    Files.isDirectory(logs) ? logs.toString() : null));
        } catch (RuntimeException e) {
            narrate.accept("skipping " + file + ": not a readable record (" + e.getMessage() + ")");
            return Optional.empty();
        }
    }

    /** The records of ended instances, oldest first. */
    List<EndedInstance> list() {
        if (!Files.isDirectory(dir)) {
            return List.of();
        }
        try (Stream<Path> all = Files.list(dir)) {
            return all.map(p -> p.getFileName().toString()).filter(LocalProvider::isInstanceId).sorted()
                    .map(this::read).flatMap(Optional::stream)
                    .sorted(Comparator.comparing(EndedInstance::ended)).toList();
        } catch (IOException e) {
            throw new KilnException(ExitCodes.FAILURE, "cannot list " + dir + ": " + e.getMessage(), e);
        }
    }

    /**
     * A build's log as an ended instance's record keeps it ({@code logs/builds/BUILD/log}, or
     * {@code logs/agent.log} for {@code agent}), if it is still kept.
     */
    Optional<Path> log(String id, String build) {
        return read(id).filter(r -> r.logs() != null).map(r -> {
            Path logs = Path.of(r.logs());
            return build.equals("agent") ? logs.resolve("agent.log") : logs.resolve("builds").resolve(build).resolve("log");
        }).filter(f -> !build.contains("/") && !build.startsWith(".") && Files.isRegularFile(f, java.nio.file.LinkOption.NOFOLLOW_LINKS));
    }

    /** Whether an ended instance's record is written (whole: it is moved into place). */
    boolean has(String id) {
        return Files.isRegularFile(dir.resolve(id).resolve(ENDED_FILE));
    }

    /**
     * Writes an ended instance's record: how it ended, what became of each volume, and a copy of
     * its logs from its directory {@code instanceDir}; whole or not at all.
     */
    void write(String id, Properties p, Path instanceDir, List<String> volumes) throws IOException {
        Files.createDirectories(dir);
        Path tmp = dir.resolve("." + id + ".partial");
        if (Files.exists(tmp)) {
            LocalTools.run("rm", "-rf", "--one-file-system", tmp.toString());
        }
        Files.createDirectories(tmp.resolve("logs"));
        if (Files.isRegularFile(instanceDir.resolve("agent.log"), java.nio.file.LinkOption.NOFOLLOW_LINKS)) {
            LocalSnapshots.copy(instanceDir.resolve("agent.log"), tmp.resolve("logs/agent.log"));
        }
        Path builds = instanceDir.resolve("state/builds");
        if (Files.isDirectory(builds, java.nio.file.LinkOption.NOFOLLOW_LINKS)) {
            LocalSnapshots.copy(builds, tmp.resolve("logs/builds"));
        }
        Properties r = new Properties();
        r.setProperty("id", id);
        r.setProperty("role", p.getProperty("role", ""));
        r.setProperty("launched", p.getProperty("launched"));
        r.setProperty("ended", p.getProperty("ended", endedAt(instanceDir).toString()));
        r.setProperty("how", p.getProperty("how", how(p, instanceDir)));
        p.stringPropertyNames().stream().filter(k -> k.startsWith("label.")).forEach(k -> r.setProperty(k, p.getProperty(k)));
        for (int i = 0; i < volumes.size(); i++) {
            r.setProperty("volume." + i, volumes.get(i));
        }
        RecordFiles.store(r, tmp.resolve(ENDED_FILE));
        Files.move(tmp, dir.resolve(id), StandardCopyOption.ATOMIC_MOVE);
    }

    /**
     * Drops the logs of records older than {@link #KEEP_LOGS} and records older than
     * {@link #KEEP_RECORDS}; with {@code dryRun}, only says what it would drop.
     */
    List<String> trim(Instant now, boolean dryRun) {
        List<String> dropped = new ArrayList<>();
        for (EndedInstance r : list()) {
            Path record = dir.resolve(r.id());
            try {
                if (r.ended().plus(KEEP_RECORDS).isBefore(now)) {
                    dropped.add("the record of " + r.id() + " (ended " + r.ended() + ", over " + KEEP_RECORDS.toDays() + " days ago)");
                    if (!dryRun) {
                        LocalTools.run("rm", "-rf", "--one-file-system", record.toString());
                    }
                } else if (r.logs() != null && r.ended().plus(KEEP_LOGS).isBefore(now)) {
                    dropped.add("the logs of " + r.id() + " (ended " + r.ended() + ", over " + KEEP_LOGS.toDays() + " days ago)");
                    if (!dryRun) {
                        LocalTools.run("rm", "-rf", "--one-file-system", record.resolve("logs").toString());
                    }
                }
            } catch (IOException e) {
                narrate.accept("cannot trim " + record + ": " + e.getMessage());
            }
        }
        return dropped;
    }

    /** When the agent ended: its log's last write (it logs as it exits), or now. */
    static Instant endedAt(Path dir) {
        try {
            return Files.getLastModifiedTime(dir.resolve("agent.log")).toInstant().truncatedTo(ChronoUnit.SECONDS);
        } catch (IOException e) {
            return Instant.now().truncatedTo(ChronoUnit.SECONDS);
        }
    }

    /**
     * How an instance ended, in the user's terms: what the command that ended it recorded
     * ({@code ending}), else what its agent's log says it drained for, else a crash.
     */
    static String how(Properties p, Path dir) {
        String ending = p.getProperty("ending");
        if (ending != null) {
            return ending;
        }
        String reason = null;
        try (Stream<String> lines = Files.lines(dir.resolve("agent.log"), StandardCharsets.UTF_8)) {
            for (String line : (Iterable<String>) lines::iterator) {
                int at = line.indexOf("draining: ");
                if (at >= 0) {
                    reason = line.substring(at + "draining: ".length()).split("[ (]")[0];
                }
            }
        } catch (IOException | java.io.UncheckedIOException e) {
            // no log: nothing says it drained
        }
        if (reason == null) {
            return "crashed (its agent exited without draining; see its agent.log)";
        }
        return switch (reason) {
            case "DEADLINE" -> "lease expired (its agent drained at its deadline)";
            case "IDLE" -> "idle timeout (its agent drained with nothing to do)";
            case "SHUTDOWN_REQUESTED" -> "shut down through its agent";
            default -> "drained by its agent (" + reason.toLowerCase(java.util.Locale.ROOT).replace('_', ' ') + ")";
        };
    }
}
