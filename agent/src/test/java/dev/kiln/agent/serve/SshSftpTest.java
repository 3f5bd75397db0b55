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

/** OpenSSH's sftp against the embedded server: downloads, listings, owner uploads, and refusals. */
class SshSftpTest {

    @TempDir
    Path tmp;
    SshFixture f;

    @BeforeEach
    void start() throws Exception {
        f = new SshFixture(tmp);
        SshFixture.randomFile(f.outputs.resolve("build-flac/artist/album/01-track.flac"), 3_000_000, 1);
        SshFixture.randomFile(f.outputs.resolve("build-flac/artist/album/02-track.flac"), 100_000, 2);
        Files.writeString(f.outputs.resolve("README.txt"), "hello\n");
        f.start();
    }

    @AfterEach
    void stop() {
        f.close();
    }

    @Test
    void readerDownloadsAFileAndListsTheTreeWithSlashAsItsRoot() throws Exception {
        Path local = Files.createDirectories(tmp.resolve("local"));
        SshFixture.Run r = f.sftp(f.readerKey, "reader", """
                pwd
                ls /
                ls -l /outputs/build-flac/artist/album
                get /outputs/build-flac/artist/album/01-track.flac %s
                df -h /outputs
                """.formatted(local.resolve("01.flac")));
        assertEquals(0, r.code(), r.toString());
        assertTrue(r.out().contains("Remote working directory: /"), r.out());
        assertTrue(r.out().contains("outputs"), r.out());
        assertFalse(r.out().contains("sources"), "a reader has no sources area: " + r.out());
        assertTrue(r.out().contains("02-track.flac"), r.out());
        assertFalse(r.out().contains(f.outputs.toString()), "real paths never leak: " + r.out());
        assertEquals(SshFixture.sha256(f.outputs.resolve("build-flac/artist/album/01-track.flac")),
                SshFixture.sha256(local.resolve("01.flac")));
    }

    @Test
    void ownerUploadsIntoSourcesButNotIntoOutputs() throws Exception {
        Path up = SshFixture.randomFile(tmp.resolve("up.wav"), 500_000, 3);
        SshFixture.Run ok = f.sftp(f.ownerKey, "owner", """
                mkdir /sources/album
                put %s /sources/album/up.wav
                rename /sources/album/up.wav /sources/album/track.wav
                """.formatted(up));
        assertEquals(0, ok.code(), ok.toString());
        assertEquals(SshFixture.sha256(up), SshFixture.sha256(f.sources.resolve("album/track.wav")));

        for (String cmd : new String[]{"put %s /outputs/x.wav".formatted(up), "mkdir /outputs/new",
                "rm /outputs/README.txt", "rename /outputs/README.txt /outputs/R.txt", "chmod 777 /outputs/README.txt",
                "rmdir /outputs/build-flac", "put %s /x.wav".formatted(up), "rename /outputs/README.txt /sources/R.txt"}) {
            SshFixture.Run r = f.sftp(f.ownerKey, "owner", cmd + "\n");
            assertNotEquals(0, r.code(), cmd + ": " + r);
            assertTrue(r.err().toLowerCase().contains("permission denied"), cmd + ": " + r);
        }
        assertTrue(Files.exists(f.outputs.resolve("README.txt")));
        assertFalse(Files.exists(f.outputs.resolve("x.wav")));
    }
}
