package dev.kiln.agent.build;

import dev.kiln.proto.agent.v1.Build;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;

/**
 * Build records and logs on disk: {@code <state-dir>/builds/<id>/build.pb} (the record, replaced
 * atomically) and {@code <state-dir>/builds/<id>/log} (every byte of output).
 */
public final class BuildStore {

    private final Path root;

    public BuildStore(Path stateDir) {
        this.root = stateDir.resolve("builds");
    }

    public Path dir(String id) {
        return root.resolve(id);
    }

    public Path log(String id) {
        return dir(id).resolve("log");
    }

    /** Writes a record durably: temp file, fsync, atomic rename. */
    public void save(BuildRecord record) throws IOException {
        Path dir = dir(record.id());
        Files.createDirectories(dir);
        // A temp file of this thread's own: two writers of one record (a build ending while a
        // restarted agent marks it interrupted) must not rename each other's file away.
        Path tmp = dir.resolve("build.pb.tmp." + ProcessHandle.current().pid() + "." + Thread.currentThread().getId());
        Files.write(tmp, BuildCodec.build(record).toByteArray());
        try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.WRITE)) {
            ch.force(true);
        }
        Files.move(tmp, dir.resolve("build.pb"), StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    }

    /** Every record on disk; unreadable ones are reported through {@code problems}. */
    public List<BuildRecord> loadAll(List<String> problems) throws IOException {
        List<BuildRecord> out = new ArrayList<>();
        if (!Files.isDirectory(root)) {
            return out;
        }
        try (DirectoryStream<Path> dirs = Files.newDirectoryStream(root)) {
            for (Path d : dirs) {
                Path pb = d.resolve("build.pb");
                if (!Files.isRegularFile(pb)) {
                    continue;
                }
                try {
                    out.add(BuildCodec.record(Build.parseFrom(Files.readAllBytes(pb))));
                } catch (IOException | RuntimeException e) {
                    problems.add("cannot read build record " + pb + ": " + e.getMessage());
                }
            }
        }
        return out;
    }
}
