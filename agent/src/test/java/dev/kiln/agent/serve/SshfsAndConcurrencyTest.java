package dev.kiln.agent.serve;

import dev.kiln.testkit.Prerequisites;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** sshfs mounts, resumed downloads, host key persistence and 16 clients at once. */
class SshfsAndConcurrencyTest {

    @TempDir
    Path tmp;
    SshFixture f;

    @BeforeEach
    void start() throws Exception {
        f = new SshFixture(tmp);
        for (int i = 0; i < 16; i++) {
            SshFixture.randomFile(f.outputs.resolve("build-flac/track-" + i + ".flac"), 1_000_000 + i * 7919L, 100 + i);
        }
        SshFixture.randomFile(f.outputs.resolve("big/large.bin"), 24_000_000, 5);
        f.start();
    }

    @AfterEach
    void stop() {
        f.close();
    }

    @Test
    void sshfsMountsTheOutputsReadOnlyAndReadsThemBackIdentical() throws Exception {
        Prerequisites.requireCommand("sshfs", "apt-get install sshfs");
        Prerequisites.require("/dev/fuse", Files.exists(Path.of("/dev/fuse")), "a kernel with FUSE (and /dev/fuse in the container)");
        Path mnt = Files.createDirectories(tmp.resolve("mnt"));
        SshFixture.Run mount = f.sshfs(f.readerKey, "reader", "/outputs", mnt);
        assertEquals(0, mount.code(), mount.toString());
        try {
            try (Stream<Path> s = Files.list(mnt.resolve("build-flac"))) {
                assertEquals(16, s.count());
            }
            for (int i = 0; i < 16; i++) {
                assertEquals(SshFixture.sha256(f.outputs.resolve("build-flac/track-" + i + ".flac")),
                        SshFixture.sha256(mnt.resolve("build-flac/track-" + i + ".flac")));
            }
            SshFixture.Run write = SshFixture.run(List.of("touch", mnt.resolve("new").toString()), 30);
            assertNotEquals(0, write.code(), write.toString());
            SshFixture.Run df = SshFixture.run(List.of("df", "-P", mnt.toString()), 30);
            assertEquals(0, df.code(), "statvfs is answered: " + df);
        } finally {
            SshFixture.Run u = SshFixture.run(List.of("fusermount3", "-u", mnt.toString()), 30);
            if (u.code() != 0) {
                SshFixture.run(List.of("umount", "-l", mnt.toString()), 30);
            }
        }
        assertFalse(Files.exists(f.outputs.resolve("new")));
    }

    @Test
    void sixteenClientsDownloadDifferentFilesAtOnce() throws Exception {
        Path local = Files.createDirectories(tmp.resolve("many"));
        ExecutorService pool = Executors.newFixedThreadPool(16);
        try {
            List<Future<SshFixture.Run>> runs = new ArrayList<>();
            for (int i = 0; i < 16; i++) {
                int n = i;
                runs.add(pool.submit(() -> switch (n % 4) {
                    case 0 -> f.sftp(f.readerKey, "reader", "get /outputs/build-flac/track-" + n + ".flac " + local.resolve(n + ".flac") + "\n");
                    case 1 -> f.scp(f.readerKey, false, "reader@127.0.0.1:/outputs/build-flac/track-" + n + ".flac", local.resolve(n + ".flac").toString());
                    case 2 -> f.scp(f.ownerKey, true, "owner@127.0.0.1:/outputs/build-flac/track-" + n + ".flac", local.resolve(n + ".flac").toString());
                    default -> f.rsync(f.readerKey, "-a", "reader@127.0.0.1:/outputs/build-flac/track-" + n + ".flac", local.resolve(n + ".flac").toString());
                }));
            }
            for (int i = 0; i < 16; i++) {
                SshFixture.Run r = runs.get(i).get(180, TimeUnit.SECONDS);
                assertEquals(0, r.code(), "client " + i + ": " + r);
            }
        } finally {
            pool.shutdownNow();
        }
        for (int i = 0; i < 16; i++) {
            assertEquals(SshFixture.sha256(f.outputs.resolve("build-flac/track-" + i + ".flac")), SshFixture.sha256(local.resolve(i + ".flac")), "file " + i);
        }
    }

    @Test
    void aKilledDownloadResumesWithSftpReget() throws Exception {
        Path local = Files.createDirectories(tmp.resolve("resume"));
        Path dest = local.resolve("large.bin");
        // Start a slow download (limited to 2 MB/s), kill it part-way.
        List<String> cmd = new ArrayList<>(List.of("sftp", "-l", "16000", "-P", Integer.toString(f.port())));
        cmd.addAll(f.sshOptions(f.readerKey));
        Path batch = Files.writeString(tmp.resolve("get.txt"), "get /outputs/big/large.bin " + dest + "\n");
        cmd.addAll(List.of("-b", batch.toString(), "reader@127.0.0.1"));
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(tmp.resolve("slow.txt").toFile()).start();
        try {
            for (int i = 0; i < 300 && (!Files.exists(dest) || Files.size(dest) < 3_000_000); i++) {
                Thread.sleep(50);
            }
        } finally {
            p.destroyForcibly();
            p.waitFor(10, TimeUnit.SECONDS);
        }
        long partial = Files.size(dest);
        assertTrue(partial > 0 && partial < 24_000_000, "partial download: " + partial);

        SshFixture.Run reget = f.sftp(f.readerKey, "reader", "reget /outputs/big/large.bin " + dest + "\n");
        assertEquals(0, reget.code(), reget.toString());
        assertEquals(SshFixture.sha256(f.outputs.resolve("big/large.bin")), SshFixture.sha256(dest));
    }

    @Test
    void theHostKeyIsKeptAcrossRestartsInOpenSshForm() throws Exception {
        String before = f.server.hostKey().fingerprint();
        Path keyFile = f.config.hostKey();
        assertTrue(Files.readString(keyFile).startsWith("-----BEGIN OPENSSH PRIVATE KEY-----"), "OpenSSH format, not serialisation");
        assertEquals("rw-------", java.nio.file.attribute.PosixFilePermissions.toString(Files.getPosixFilePermissions(keyFile)));
        SshFixture.Run keygen = SshFixture.run(List.of("ssh-keygen", "-l", "-f", keyFile.toString()), 30);
        assertEquals(0, keygen.code(), keygen.toString());
        assertTrue(keygen.out().contains(before), "ssh-keygen reads it and agrees on the fingerprint: " + keygen);
        f.close();
        f.start();
        assertEquals(before, f.server.hostKey().fingerprint());
        SshFixture.Run r = f.ssh(f.readerKey, "reader", "md5sum", "/outputs/big/large.bin");
        assertEquals(0, r.code(), "strict host key checking passes against the same key: " + r);
    }
}
