package dev.kiln.agent.serve;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** OpenSSH's scp in both modes: SFTP-based (the default) and legacy ({@code scp -O}). */
class SshScpTest {

    @TempDir
    Path tmp;
    SshFixture f;
    Path big;

    @BeforeEach
    void start() throws Exception {
        f = new SshFixture(tmp);
        big = SshFixture.randomFile(f.outputs.resolve("build-opus/a/01-first.opus"), 2_500_000, 7);
        SshFixture.randomFile(f.outputs.resolve("build-opus/a/name with spaces.opus"), 1234, 6);
        SshFixture.randomFile(f.outputs.resolve("build-opus/a/02.opus"), 10_000, 8);
        SshFixture.randomFile(f.outputs.resolve("build-opus/b/c/03.opus"), 0, 9);
        f.start();
    }

    @AfterEach
    void stop() {
        f.close();
    }

    @Test
    void downloadsAFileAndATreeInBothModes() throws Exception {
        for (boolean legacy : new boolean[]{false, true}) {
            Path local = Files.createDirectories(tmp.resolve("local-" + legacy));
            SshFixture.Run one = f.scp(f.readerKey, legacy, "reader@127.0.0.1:/outputs/build-opus/a/01-first.opus",
                    local.resolve("one.opus").toString());
            assertEquals(0, one.code(), "legacy=" + legacy + ": " + one);
            assertEquals(SshFixture.sha256(big), SshFixture.sha256(local.resolve("one.opus")));

            SshFixture.Run tree = f.scp(f.readerKey, legacy, "-r", "-p", "reader@127.0.0.1:/outputs/build-opus", local.toString());
            assertEquals(0, tree.code(), "legacy=" + legacy + ": " + tree);
            for (String rel : new String[]{"a/01-first.opus", "a/name with spaces.opus", "a/02.opus", "b/c/03.opus"}) {
                assertEquals(SshFixture.sha256(f.outputs.resolve("build-opus").resolve(rel)),
                        SshFixture.sha256(local.resolve("build-opus").resolve(rel)), rel);
            }
            assertEquals(Files.getLastModifiedTime(big).toMillis() / 1000,
                    Files.getLastModifiedTime(local.resolve("build-opus/a/01-first.opus")).toMillis() / 1000, "-p keeps times");
        }
    }

    @Test
    void legacyUploadsGoOnlyIntoTheOwnersSources() throws Exception {
        Path src = SshFixture.randomFile(tmp.resolve("up/track.wav"), 700_000, 11);
        SshFixture.randomFile(tmp.resolve("up/sub/other.wav"), 1000, 12);
        SshFixture.Run ok = f.scp(f.ownerKey, true, "-r", tmp.resolve("up").toString(), "owner@127.0.0.1:/sources/");
        assertEquals(0, ok.code(), ok.toString());
        assertEquals(SshFixture.sha256(src), SshFixture.sha256(f.sources.resolve("up/track.wav")));
        assertTrue(Files.exists(f.sources.resolve("up/sub/other.wav")));

        SshFixture.Run modern = f.scp(f.ownerKey, false, src.toString(), "owner@127.0.0.1:/sources/modern.wav");
        assertEquals(0, modern.code(), modern.toString());
        assertEquals(SshFixture.sha256(src), SshFixture.sha256(f.sources.resolve("modern.wav")));

        for (boolean legacy : new boolean[]{true, false}) {
            for (String target : new String[]{"owner@127.0.0.1:/outputs/x.wav", "owner@127.0.0.1:/outputs/build-opus/a/02.opus",
                    "owner@127.0.0.1:/x.wav", "owner@127.0.0.1:/outputs/", "reader@127.0.0.1:/sources/x.wav"}) {
                Path key = target.startsWith("reader") ? f.readerKey : f.ownerKey;
                SshFixture.Run r = f.scp(key, legacy, src.toString(), target);
                assertNotEquals(0, r.code(), "legacy=" + legacy + " " + target + ": " + r);
                String err = r.err().toLowerCase();
                assertTrue(err.contains("permission denied") || err.contains("no such file"), target + ": " + r);
            }
        }
        assertFalse(Files.exists(f.outputs.resolve("x.wav")));
        assertEquals(10_000, Files.size(f.outputs.resolve("build-opus/a/02.opus")), "a read-only file is not overwritten");
    }

    @Test
    void legacyScpCannotClimbOutOrFollowLinksOut() throws Exception {
        Files.createSymbolicLink(f.outputs.resolve("etc"), Path.of("/etc"));
        Path local = Files.createDirectories(tmp.resolve("local"));
        for (String src : new String[]{"/outputs/etc/passwd", "/../etc/passwd", "../../etc/passwd"}) {
            SshFixture.Run r = f.scp(f.readerKey, true, "reader@127.0.0.1:" + src, local.resolve("x").toString());
            assertNotEquals(0, r.code(), src + ": " + r);
            assertFalse(Files.exists(local.resolve("x")), src);
        }
        SshFixture.Run r = f.scp(f.readerKey, true, "-r", "reader@127.0.0.1:/outputs", local.toString());
        assertFalse(Files.exists(local.resolve("outputs/etc/passwd")), "the link is not followed: " + r);
        assertTrue(Files.exists(local.resolve("outputs/build-opus/a/02.opus")), r.toString());
    }

    @Test
    void legacyErrorsNameTheUsersPathAndTheReasonNeverTheRealPath() throws Exception {
        Path local = Files.createDirectories(tmp.resolve("local"));
        SshFixture.Run missing = f.scp(f.readerKey, true, "reader@127.0.0.1:/outputs/build-opus/nope.opus", local.toString());
        assertNotEquals(0, missing.code(), missing.toString());
        assertTrue(missing.err().contains("scp: /outputs/build-opus/nope.opus: No such file or directory"), missing.toString());

        SshFixture.Run dir = f.scp(f.readerKey, true, "reader@127.0.0.1:/outputs/build-opus", local.toString());
        assertNotEquals(0, dir.code(), dir.toString());
        assertTrue(dir.err().contains("scp: /outputs/build-opus: not a regular file"), dir.toString());

        Path src = SshFixture.randomFile(tmp.resolve("up.wav"), 1000, 3);
        SshFixture.Run readOnly = f.scp(f.ownerKey, true, src.toString(), "owner@127.0.0.1:/outputs/build-opus/a/");
        assertNotEquals(0, readOnly.code(), readOnly.toString());
        assertTrue(readOnly.err().contains("scp: /outputs/build-opus/a: Permission denied (/outputs is read-only)"),
                readOnly.toString());

        for (SshFixture.Run r : new SshFixture.Run[]{missing, dir, readOnly}) {
            assertFalse(r.err().contains(f.outputs.toString()), "a real path reached the client: " + r);
            assertFalse(r.err().contains(tmp.toString() + "/"), "a real path reached the client: " + r);
        }
        assertFalse(Files.exists(local.resolve("nope.opus")));
        assertFalse(Files.exists(f.outputs.resolve("build-opus/a/up.wav")));
    }

    @Test
    void legacyUploadWithPKeepsTheModificationTime() throws Exception {
        Path src = SshFixture.randomFile(tmp.resolve("up/track.wav"), 300_000, 21);
        Files.setLastModifiedTime(src, java.nio.file.attribute.FileTime.fromMillis(1_500_000_000_000L));
        SshFixture.Run up = f.scp(f.ownerKey, true, "-p", src.toString(), "owner@127.0.0.1:/sources/track.wav");
        assertEquals(0, up.code(), up.toString());
        assertEquals(SshFixture.sha256(src), SshFixture.sha256(f.sources.resolve("track.wav")));
        assertEquals(1_500_000_000L, Files.getLastModifiedTime(f.sources.resolve("track.wav")).toMillis() / 1000);
    }

    @Test
    void legacyDownloadExpandsAStarInTheRemotePathWithinTheTree() throws Exception {
        Path local = Files.createDirectories(tmp.resolve("globbed"));
        SshFixture.Run r = f.scp(f.readerKey, true, "reader@127.0.0.1:/outputs/build-opus/a/*.opus", local.toString());
        assertEquals(0, r.code(), r.toString());
        for (String name : new String[]{"01-first.opus", "name with spaces.opus", "02.opus"}) {
            assertEquals(SshFixture.sha256(f.outputs.resolve("build-opus/a").resolve(name)), SshFixture.sha256(local.resolve(name)), name);
        }
        try (var listed = Files.list(local)) {
            assertEquals(3, listed.count(), r.toString());
        }
    }
}
