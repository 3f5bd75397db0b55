package dev.kiln.controller.local;

import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;

/**
 * Where a local agent's AppCDS archive lives: the classes a started agent has loaded, parsed and
 * verified, which the next JVM maps from one file rather than reading them from the 35 MB jar
 * again (what that saves: docs/performance.md). The archive belongs to one agent jar
 * and one JDK build, so its name carries the jar's size and modification time and the JDK's
 * version: a rebuilt jar or another JDK never meets an old archive (a JVM handed a mismatched
 * archive ignores it and starts as without one; it never fails). It sits beside the jar when that
 * directory is writable (shared by every HOME, as with {@code bin/kiln}'s archive of the CLI), else
 * in the user's state directory.
 */
public final class AgentClassArchive {

    /** Options that already decide class sharing: with any of them, Kiln adds none. */
    private static final List<String> USER_CHOICES = List.of("-Xshare", "-XX:SharedArchiveFile", "-XX:ArchiveClassesAtExit");

    private AgentClassArchive() {
    }

    /**
     * The archive for this jar and this JDK, whether or not it exists yet; empty when the user's
     * JVM options already choose about class sharing.
     */
    public static Optional<Path> of(Path agentJar, Path stateDir, List<String> javaOptions) throws IOException {
        if (javaOptions.stream().anyMatch(o -> USER_CHOICES.stream().anyMatch(o::startsWith))) {
            return Optional.empty();
        }
        Path jar = agentJar.toAbsolutePath();
        Path dir = Files.isWritable(jar.getParent()) ? jar.getParent() : stateDir.resolve("cds");
        String jdk = Runtime.version().toString().replaceAll("[^A-Za-z0-9.+-]", "_");
        return Optional.of(dir.resolve("kiln-agent-" + Files.size(jar) + "-" + Files.getLastModifiedTime(jar).toMillis()
                + "-jdk" + jdk + ".jsa"));
    }

    /** The JVM options that use an existing archive, quietly (a mismatch is not worth a line in the agent's log). */
    public static List<String> useOptions(Path archive) {
        return List.of("-XX:SharedArchiveFile=" + archive, "-Xlog:cds=off", "-Xlog:cds+dynamic=off");
    }

    /** Removes the archives of other jars or JDKs next to {@code keep}. */
    static void removeOthers(Path keep) {
        try (DirectoryStream<Path> all = Files.newDirectoryStream(keep.getParent(), "kiln-agent-*.jsa")) {
            for (Path p : all) {
                if (!p.equals(keep)) {
                    Files.deleteIfExists(p);
                }
            }
        } catch (IOException ignored) {
            // Old archives only cost disk space.
        }
    }
}
