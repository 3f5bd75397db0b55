package dev.kiln.agent.serve;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The real rsync over ssh, with the real {@code rsync --server} confined by bubblewrap on the agent side. */
class SshRsyncTest {

    @TempDir
    Path tmp;
    SshFixture f;

    @BeforeEach
    void start() throws Exception {
        dev.kiln.testkit.Prerequisites.requireCommand("rsync", "apt-get install rsync");
        dev.kiln.testkit.Prerequisites.requireCommand("bwrap", "apt-get install bubblewrap");
        f = new SshFixture(tmp);
        SshFixture.randomFile(f.outputs.resolve("build-mp3/artist/album/01.mp3"), 1_500_000, 21);
        SshFixture.randomFile(f.outputs.resolve("build-mp3/artist/album/02.mp3"), 800_000, 22);
        SshFixture.randomFile(f.outputs.resolve("build-mp3/artist/other/01.mp3"), 50_000, 23);
        Files.writeString(f.outputs.resolve("build-mp3/artist/album/album.m3u"), "01.mp3\n02.mp3\n");
        Files.createSymbolicLink(f.outputs.resolve("build-mp3/artist/latest"), Path.of("album"));
        Files.createSymbolicLink(f.outputs.resolve("build-mp3/etc"), Path.of("/etc"));
        f.start();
    }

    @AfterEach
    void stop() {
        f.close();
    }

    @Test
    void readerPullsIncrementallyAndASecondRunTransfersNothing() throws Exception {
        Path local = tmp.resolve("pulled");
        SshFixture.Run first = f.rsync(f.readerKey, "-a", "--stats", "reader@127.0.0.1:/outputs/build-mp3/", local + "/");
        assertEquals(0, first.code(), first.toString());
        for (String rel : List.of("artist/album/01.mp3", "artist/album/02.mp3", "artist/other/01.mp3", "artist/album/album.m3u")) {
            assertEquals(SshFixture.sha256(f.outputs.resolve("build-mp3").resolve(rel)), SshFixture.sha256(local.resolve(rel)), rel);
        }
        assertTrue(Files.isSymbolicLink(local.resolve("artist/latest")), "links are copied as links");
        assertEquals("/etc", Files.readSymbolicLink(local.resolve("etc")).toString(), "and never followed on the agent");

        SshFixture.Run second = f.rsync(f.readerKey, "-a", "--stats", "reader@127.0.0.1:/outputs/build-mp3/", local + "/");
        assertEquals(0, second.code(), second.toString());
        assertTrue(second.out().contains("Number of regular files transferred: 0"), second.out());

        // Change one file: only it travels.
        SshFixture.randomFile(f.outputs.resolve("build-mp3/artist/album/02.mp3"), 800_001, 99);
        SshFixture.Run third = f.rsync(f.readerKey, "-a", "--stats", "reader@127.0.0.1:outputs/build-mp3/", local + "/");
        assertEquals(0, third.code(), third.toString());
        assertTrue(third.out().contains("Number of regular files transferred: 1"), third.out());
        assertEquals(SshFixture.sha256(f.outputs.resolve("build-mp3/artist/album/02.mp3")),
                SshFixture.sha256(local.resolve("artist/album/02.mp3")));
    }

    @Test
    void ownerPushesIntoSourcesAndPullsBoth() throws Exception {
        Path collection = tmp.resolve("collection");
        SshFixture.randomFile(collection.resolve("artist/album/01-a.wav"), 1_000_000, 31);
        SshFixture.randomFile(collection.resolve("artist/album/02-b.wav"), 10, 32);
        Files.writeString(collection.resolve("artist/ARTIST"), "Someone\n");
        Files.createSymbolicLink(collection.resolve("artist/escape"), Path.of("/etc/passwd"));
        Files.createSymbolicLink(collection.resolve("artist/ok"), Path.of("ARTIST"));
        SshFixture.Run push = f.rsync(f.ownerKey, "-a", collection + "/", "owner@127.0.0.1:/sources/vibes/");
        assertEquals(0, push.code(), push.toString());
        assertEquals(SshFixture.sha256(collection.resolve("artist/album/01-a.wav")),
                SshFixture.sha256(f.sources.resolve("vibes/artist/album/01-a.wav")));
        assertTrue(Files.isSymbolicLink(f.sources.resolve("vibes/artist/ok")));
        assertFalse(Files.exists(f.sources.resolve("vibes/artist/escape"), LinkOption.NOFOLLOW_LINKS),
                "--safe-links: a link out of the tree is not created");

        SshFixture.Run again = f.rsync(f.ownerKey, "-a", "--stats", collection + "/", "owner@127.0.0.1:/sources/vibes/");
        assertEquals(0, again.code(), again.toString());
        assertTrue(again.out().contains("Number of regular files transferred: 0"), again.out());

        Path local = tmp.resolve("both");
        SshFixture.Run pull = f.rsync(f.ownerKey, "-a", "owner@127.0.0.1:/sources/vibes", "owner@127.0.0.1:/outputs/build-mp3", local + "/");
        assertEquals(0, pull.code(), pull.toString());
        assertTrue(Files.exists(local.resolve("vibes/artist/album/01-a.wav")));
        assertTrue(Files.exists(local.resolve("build-mp3/artist/album/01.mp3")));
    }

    @Test
    void refusesWritesToReadOnlyTreesAndArgumentAbuse() throws Exception {
        Path up = SshFixture.randomFile(tmp.resolve("up/x.bin"), 1000, 41);
        // Uploads: a reader may not at all; the owner only into /sources.
        for (String[] c : new String[][]{
                {"reader", "reader@127.0.0.1:/outputs/"}, {"reader", "reader@127.0.0.1:/sources/"},
                {"owner", "owner@127.0.0.1:/outputs/"}, {"owner", "owner@127.0.0.1:/"},
                {"owner", "owner@127.0.0.1:/sources/../outputs/"}, {"owner", "owner@127.0.0.1:/etc/"}}) {
            Path key = c[0].equals("reader") ? f.readerKey : f.ownerKey;
            SshFixture.Run r = f.rsync(key, "-a", up.toString(), c[1]);
            assertNotEquals(0, r.code(), String.join(" ", c) + ": " + r);
            assertTrue(r.err().contains("kiln-agent: rsync refused"), String.join(" ", c) + ": " + r);
        }
        assertFalse(Files.exists(f.outputs.resolve("x.bin")));

        Path local = tmp.resolve("abuse");
        // Options that would follow links out, write logs or files elsewhere, or delete sources.
        for (List<String> args : List.of(
                List.of("-aL", "reader@127.0.0.1:/outputs/build-mp3/", local + "/"),
                List.of("-a", "--copy-unsafe-links", "reader@127.0.0.1:/outputs/build-mp3/", local + "/"),
                List.of("-a", "--remove-source-files", "reader@127.0.0.1:/outputs/build-mp3/", local + "/"),
                List.of("-a", "--rsync-path=rsync --log-file=/tmp/pwned", "reader@127.0.0.1:/outputs/", local + "/"),
                List.of("-a", "--rsync-path=sh -c id;rsync", "reader@127.0.0.1:/outputs/", local + "/"),
                List.of("-a", "-s", "reader@127.0.0.1:/outputs/", local + "/"),
                List.of("-a", "reader@127.0.0.1:/", local + "/"),
                List.of("-a", "reader@127.0.0.1:", local + "/"),
                List.of("-a", "reader@127.0.0.1:/outputs/../../etc/passwd", local + "/"),
                List.of("-a", "reader@127.0.0.1:/usr/bin/", local + "/"),
                List.of("-a", "reader@127.0.0.1:/proc/self/environ", local + "/"),
                List.of("-a", "reader@127.0.0.1:/*", local + "/"))) {
            SshFixture.Run r = f.rsync(f.readerKey, args.toArray(new String[0]));
            assertNotEquals(0, r.code(), args + ": " + r);
            assertTrue(r.err().contains("kiln-agent:"), args + ": " + r);
        }
        assertFalse(Files.exists(Path.of("/tmp/pwned")));
        assertFalse(Files.exists(local.resolve("passwd")));
        assertFalse(Files.exists(local.resolve("environ")));
    }

    @Test
    void checksumsMatchWhatRsyncAndSftpServe() throws Exception {
        SshFixture.Run sum = f.ssh(f.readerKey, "reader", "sha256sum", "/outputs/build-mp3/artist/album/01.mp3",
                "outputs/build-mp3/artist/album/album.m3u");
        assertEquals(0, sum.code(), sum.toString());
        assertEquals(SshFixture.sha256(f.outputs.resolve("build-mp3/artist/album/01.mp3")) + "  /outputs/build-mp3/artist/album/01.mp3\n"
                + SshFixture.sha256(f.outputs.resolve("build-mp3/artist/album/album.m3u")) + "  outputs/build-mp3/artist/album/album.m3u\n",
                sum.out());
        SshFixture.Run md5 = f.ssh(f.readerKey, "reader", "md5sum", "/outputs/build-mp3/artist/album/album.m3u");
        assertEquals(0, md5.code(), md5.toString());
        SshFixture.Run local = SshFixture.run(List.of("md5sum", f.outputs.resolve("build-mp3/artist/album/album.m3u").toString()), 30);
        assertEquals(local.out().split(" ")[0], md5.out().split(" ")[0]);
        SshFixture.Run missing = f.ssh(f.readerKey, "reader", "sha256sum", "/outputs/nope");
        assertEquals(1, missing.code());
        assertTrue(missing.err().contains("/outputs/nope: No such file or directory"), missing.toString());
    }

    @Test
    void aLinkInAPathArgumentReachesNothingButTheUsersTree() throws Exception {
        // rsync follows links in the paths it is given: /proc/self/root would lead back to the
        // sandbox's root (and its /usr), and /usr directly to the system's programs.
        Files.createSymbolicLink(f.outputs.resolve("root"), Path.of("/proc/self/root"));
        Files.createSymbolicLink(f.outputs.resolve("usr"), Path.of("/usr"));
        Path local = Files.createDirectories(tmp.resolve("leak"));
        for (String path : List.of("/outputs/root/usr/lib/os-release", "/outputs/usr/lib/os-release", "/outputs/root/")) {
            SshFixture.Run r = f.rsync(f.readerKey, "-a", "reader@127.0.0.1:" + path, local + "/");
            assertNotEquals(0, r.code(), path + ": " + r);
            assertTrue(r.err().contains("rsync refused: " + path + ": symbolic link leads outside /outputs"), r.toString());
        }
        try (var s = Files.list(local)) {
            assertEquals(0, s.count(), "nothing came out of the sandbox");
        }
    }
}
