package dev.kiln.e2e;

import dev.kiln.e2e.RepoScript.Result;
import dev.kiln.testkit.Prerequisites;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The README's first command, `bin/quickstart`, as a new user runs it (in a throwaway home). */
class QuickstartTest {

    static final Path ROOT = RepoScript.ROOT;

    @TempDir
    Path home;

    Result run(String... command) throws IOException, InterruptedException {
        return RepoScript.run(home, Map.of("KILN_DEMO_DIR", home.resolve("demo").toString(), "COLUMNS", "80"),
                Duration.ofSeconds(300), command);
    }

    @AfterEach
    void down() throws Exception {
        // The quickstart leaves its server running for its lease; end every instance it launched.
        Result ls = run(ROOT.resolve("bin/kiln").toString(), "ls", "-o", "json");
        java.util.regex.Matcher m = java.util.regex.Pattern.compile("\"id\": \"(local-[0-9a-f]+)\"").matcher(ls.out());
        while (m.find()) {
            run(ROOT.resolve("bin/kiln").toString(), "terminate", m.group(1), "--force");
        }
    }

    @Test
    void quickstartRunsThePipelineOnTheLocalProviderAndAgainDoesNothing() throws Exception {
        for (String tool : List.of("tup", "sox", "flac", "lame", "oggenc", "opusenc", "rsync")) {
            Prerequisites.requireCommand(tool, "apt-get install tup fuse3 sox flac lame vorbis-tools opus-tools rsync");
        }
        Files.setPosixFilePermissions(home, PosixFilePermissions.fromString("rwxr-xr-x"));
        Result first = run(ROOT.resolve("bin/quickstart").toString());
        assertEquals(0, first.code(), first.err());
        assertEquals("", first.out(), "stdout holds nothing unless asked (--print-path)");
        assertFitsTheWidth(first.err());
        String err = unwrapped(first.err());
        // Ingest, build, serve: each a launched local instance, its volumes snapshotted on the way.
        assertTrue(err.matches("(?s).*1/4 collection: generating.*2/4 ingest: kiln launch --role ingest --volume sources:1.*"
                + "kiln: pushed 61 changed file\\(s\\).*kiln: kept the newest 2 snapshots of sources.*3/4 build: .*"), err);
        assertTrue(err.matches("(?s).*kiln: build b-\\S+ succeeded \\(exit 0\\).*kept the newest 2 snapshots of builds.*4/4 serve: .*"),
                err);
        assertTrue(err.contains("kiln: launching a local ingest"), "the ingest step is named as what it is: " + err);
        Path demo = home.resolve("demo");
        assertTrue(Files.readString(demo.resolve("build.log")).contains("[ tup ]"), "tup's own output is in the build's log");
        Path pulled = demo.resolve("pulled/vibes-opus");
        try (Stream<Path> files = Files.walk(pulled)) {
            assertEquals(14, files.filter(f -> f.toString().endsWith(".opus")).count(), "pulled Opus tracks");
        }
        try (Stream<Path> files = Files.walk(pulled)) {
            assertEquals(4, files.filter(f -> f.toString().endsWith(".m3u")).count(), "playlists");
        }
        assertTrue(err.contains("14 Opus tracks in " + pulled), err);
        assertTrue(err.contains("rsync -a -e 'ssh -F "), err);
        assertTrue(Files.readString(home.resolve(".config/kiln/ssh_config")).contains("Host kiln-local-"), "the Host alias names the server instance");
        Result snapshots = run(ROOT.resolve("bin/kiln").toString(), "snapshots");
        assertEquals(2, snapshots.out().lines().filter(l -> l.startsWith("snap-local-")).count(), snapshots.out());
        // What it leaves is the server it names, with how to end it, and the snapshots it lists.
        String server = onlyRunningInstance();
        assertTrue(err.contains("what this run leaves: - the server " + server), err);
        assertTrue(err.contains("bin/kiln terminate " + server), err);
        snapshots.out().lines().filter(l -> l.startsWith("snap-local-"))
                .forEach(l -> assertTrue(err.contains(l.substring(0, l.indexOf(' '))), "lists " + l + ":\n" + err));

        Result again = run(ROOT.resolve("bin/quickstart").toString(), "--print-path");
        assertEquals(0, again.code(), again.err());
        assertEquals(pulled + "\n", again.out(), "--print-path prints the pulled folder, and only that, on stdout");
        assertFitsTheWidth(again.err());
        String err2 = unwrapped(again.err());
        assertTrue(err2.contains("1/4 collection: using the one already in " + demo.resolve("vibes")), err2);
        assertTrue(err2.contains("2/4 ingest: skipped, the newest sources snapshot has the collection"), err2);
        assertTrue(err2.contains("kiln terminate " + server + " (the server of an earlier run"), err2);
        assertTrue(err2.contains("pushed 0 changed file(s)"), "the rules are not copied again: " + err2);
        if (Prerequisites.isRoot()) {
            // As root volumes are images copied whole, so tup's state survives the builds snapshot.
            assertTrue(Files.readString(demo.resolve("build.log")).contains("No commands to execute."), err2);
        }
        assertTrue(err2.contains("pulled 0 changed file(s)"), "the second pull transfers nothing: " + err2);
        String server2 = onlyRunningInstance();
        assertTrue(err2.contains("bin/kiln terminate " + server2), err2);
    }

    /** The one instance `kiln ls` shows running, which the quick start says it leaves. */
    private String onlyRunningInstance() throws IOException, InterruptedException {
        Result ls = run(ROOT.resolve("bin/kiln").toString(), "ls");
        List<String> running = ls.out().lines().filter(l -> l.matches("local-[0-9a-f]+ .* running .*"))
                .map(l -> l.substring(0, l.indexOf(' '))).toList();
        assertEquals(1, running.size(), "only the server runs:\n" + ls.out());
        return running.get(0);
    }

    /**
     * Each line fits in 80 columns (COLUMNS=80), unless it starts with a word too long for one (a
     * deep temporary path), which is not cut.
     */
    private static void assertFitsTheWidth(String err) {
        for (String line : err.lines().toList()) {
            assertTrue(line.length() < 80 || line.substring(9, 79).indexOf(' ') < 0, "wider than 80 columns: " + line);
        }
    }

    /** Narration with its wrapped lines (continued with an indent) and its commands' continued lines joined again. */
    private static String unwrapped(String err) {
        return err.replaceAll(" \\\\\n +", " ").replaceAll("\n +", " ");
    }
}
