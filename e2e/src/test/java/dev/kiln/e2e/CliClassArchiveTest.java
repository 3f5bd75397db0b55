package dev.kiln.e2e;

import dev.kiln.e2e.RepoScript.Result;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * bin/kiln's class-data archive for the CLI: the first {@code status} (or {@code builds}) after a
 * build that talks to an agent and succeeds lists its classes ({@code up} lists none), a static
 * archive is dumped from that list in the background, and later commands map it, picocli's
 * classes included (a dynamic archive leaves them out: they are class-file version 49). A failing command, or one that never reached an
 * agent, leaves no archive and no list.
 * The archive is a cache beside the repository's own kiln.jar; this test clears it first.
 */
class CliClassArchiveTest {

    static final Path ROOT = RepoScript.ROOT;
    static final Path TARGET = ROOT.resolve("controller/target");
    static final Duration DUMP = Duration.ofSeconds(120);

    @TempDir
    Path home;

    Result kiln(Map<String, String> env, String... args) throws IOException, InterruptedException {
        return RepoScript.kiln(home, env, args);
    }

    @AfterEach
    void down() throws Exception {
        kiln(Map.of(), "down", "--local");
    }

    @Test
    void theFirstSuccessfulAgentCommandLeavesAStaticArchiveThatLaterCommandsMap() throws Exception {
        waitForNoDump(); // another test's command may still be dumping the archive
        deleteArchives();

        Result unreachable = kiln(Map.of(), "status", "--agent", "127.0.0.1:1");
        assertTrue(unreachable.code() != 0, unreachable.err());
        assertEquals(List.of(), cacheFiles(), "a failed command starts no dump and leaves no class list");
        Result help = kiln(Map.of(), "status", "--help");
        assertEquals(0, help.code(), help.err());
        assertEquals(List.of(), cacheFiles(), "nor does one that never reached an agent");

        Result up = kiln(Map.of(), "up", "--local", "--ssh-port", "0");
        assertEquals(0, up.code(), up.err());
        waitForNoDump();
        assertEquals(List.of(), cacheFiles(), "`up` lists no classes: `status` would miss those it reads answers with");
        Result first = kiln(Map.of(), "status");
        assertEquals(0, first.code(), first.err());
        waitForNoDump();
        List<Path> archives = cacheFiles();
        assertEquals(1, archives.size(), "one archive and nothing else: " + archives);
        String name = archives.get(0).getFileName().toString();
        assertTrue(name.matches("kiln-" + Files.size(TARGET.resolve("kiln.jar")) + "-\\d+-jvm\\d+-\\d+\\.jsa"), name);

        Path classes = home.resolve("classes.txt");
        Result status = kiln(Map.of("KILN_JAVA_OPTS", "-Xlog:class+load=info:file=" + classes), "status");
        assertEquals(0, status.code(), status.err());
        assertTrue(status.out().matches("(?s).*state\\s+ready\n.*"), status.out());
        List<String> loaded = Files.readAllLines(classes);
        assertTrue(loaded.stream().anyMatch(l -> l.contains(" picocli.CommandLine source: shared objects file")),
                "picocli comes from the archive");
        // picocli's classes (about 180, all from the jar with a dynamic archive) are in it, but for
        // a few interfaces that the CLI's lambdas implement.
        List<String> picocliFromJar = loaded.stream().filter(l -> l.contains("source: file:") && l.contains(" picocli.")).toList();
        assertTrue(picocliFromJar.size() <= 5, "picocli's classes come from the archive: " + picocliFromJar);
        // So are those that read the agent's answer (the protocol's messages, protobuf's descriptors).
        List<String> protoFromJar = loaded.stream().filter(l -> l.contains("source: file:")
                && (l.contains(" com.google.protobuf.") || l.contains(" dev.kiln.proto."))).toList();
        assertEquals(List.of(), protoFromJar, "the agent's answer is read with classes from the archive");
        assertEquals(archives, cacheFiles(), "a command that finds its archive writes nothing");
    }

    @Test
    void aCommandRunWithAJvmtiAgentDumpsNothingSoTheArchiveIsNotMarkedFailed() throws Exception {
        waitForNoDump();
        deleteArchives();
        // A debugger, as a user would attach one: the JVM cannot dump an archive with a JVMTI agent
        // loaded, so a dump from this command would fail and mark the archive failed for a day.
        Map<String, String> debugger = Map.of("KILN_JAVA_OPTS",
                "-agentlib:jdwp=transport=dt_socket,server=y,suspend=n,address=127.0.0.1:0");
        Result up = kiln(debugger, "up", "--local", "--ssh-port", "0");
        assertEquals(0, up.code(), up.err());
        Result status = kiln(debugger, "status");
        assertEquals(0, status.code(), status.err());
        assertTrue(status.out().contains("Listening for transport dt_socket"), "the debugger was loaded: " + status.out());
        waitForNoDump();
        assertEquals(List.of(), cacheFiles(), "no class list, no dump, no failure mark");

        Result plain = kiln(Map.of(), "status");
        assertEquals(0, plain.code(), plain.err());
        waitForNoDump();
        List<Path> archives = cacheFiles();
        assertEquals(1, archives.size(), "the next command without one makes the archive: " + archives);
        assertTrue(archives.get(0).toString().endsWith(".jsa"), archives.toString());
    }

    /** The CLI archives, class lists, locks, temporary files and failure marks beside kiln.jar. */
    static List<Path> cacheFiles() throws IOException {
        try (Stream<Path> files = Files.list(TARGET)) {
            return files.filter(f -> f.getFileName().toString().matches("kiln-.*\\.(jsa|classlist|lock|tmp|failed)")).sorted().toList();
        }
    }

    static void deleteArchives() throws IOException {
        for (Path f : cacheFiles()) {
            Files.delete(f);
        }
    }

    /** Waits (bounded) until no dump holds its lock. */
    static void waitForNoDump() throws Exception {
        long end = System.nanoTime() + DUMP.toNanos();
        while (cacheFiles().stream().anyMatch(f -> f.toString().endsWith(".lock"))) {
            if (System.nanoTime() > end) {
                throw new AssertionError("a class-data dump still holds its lock after " + DUMP + ": " + cacheFiles());
            }
            Thread.sleep(200);
        }
    }
}
