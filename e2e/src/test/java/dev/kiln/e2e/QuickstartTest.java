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
        return RepoScript.run(home, Map.of("KILN_DEMO_DIR", home.resolve("demo").toString()), Duration.ofSeconds(300), command);
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
        // Ingest, build, serve: each a launched local instance, its volumes snapshotted on the way.
        assertTrue(first.err().matches("(?s).*ingest: kiln launch --volume sources:1.*kiln: pushed 60 changed file\\(s\\).*"
                + "kiln: kept the newest 2 snapshots of sources.*"), first.err());
        assertTrue(first.err().matches("(?s).*kiln: build b-\\S+ succeeded \\(exit 0\\).*kept the newest 2 snapshots of builds.*"),
                first.err());
        assertTrue(first.out().contains("[ tup ]"), "tup's own output is streamed to stdout");
        Path pulled = home.resolve("demo/pulled/vibes-opus");
        try (Stream<Path> files = Files.walk(pulled)) {
            assertEquals(14, files.filter(f -> f.toString().endsWith(".opus")).count(), "pulled Opus tracks");
        }
        try (Stream<Path> files = Files.walk(pulled)) {
            assertEquals(4, files.filter(f -> f.toString().endsWith(".m3u")).count(), "playlists");
        }
        assertTrue(first.err().contains("pulled 14 Opus tracks into " + pulled), first.err());
        assertTrue(first.err().contains("rsync -a -e 'ssh -F "), first.err());
        assertTrue(Files.readString(home.resolve(".config/kiln/ssh_config")).contains("Host kiln-local-"), "the Host alias names the server instance");
        Result snapshots = run(ROOT.resolve("bin/kiln").toString(), "snapshots");
        assertEquals(2, snapshots.out().lines().filter(l -> l.startsWith("snap-local-")).count(), snapshots.out());

        Result again = run(ROOT.resolve("bin/quickstart").toString());
        assertEquals(0, again.code(), again.err());
        assertTrue(again.err().contains("using the collection already in " + home.resolve("demo/vibes")), again.err());
        assertTrue(again.err().contains("using the newest sources snapshot"), again.err());
        assertTrue(again.err().matches("(?s).*kiln terminate local-[0-9a-f]+ +\\(the server of an earlier run\\).*"), again.err());
        assertTrue(again.err().contains("pushed 0 changed file(s)"), again.err());
        if (Prerequisites.isRoot()) {
            // As root volumes are images copied whole, so tup's state survives the builds snapshot.
            assertTrue(again.out().contains("No commands to execute."), again.out());
        }
        assertTrue(again.err().contains("pulled 0 changed file(s)"), "the second pull transfers nothing: " + again.err());
    }
}
