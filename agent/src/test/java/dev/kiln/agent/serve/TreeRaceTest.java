package dev.kiln.agent.serve;

import dev.kiln.testkit.Prerequisites;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Whoever can write the served tree (a build, a process it left behind, the owner) swaps
 * directories for symbolic links while clients read, list and write through them: no client ever
 * reaches a file outside the tree, whichever protocol it uses.
 */
class TreeRaceTest {

    /** What a root-only file outside the tree holds; no client may ever see it. */
    static final String SECRET = "CANARY-SECRET-0600";
    /** A name only the root-only directory outside the tree has; no listing may ever show it. */
    static final String SECRET_NAME = "only-outside-the-tree";
    static final String INSIDE = "inside the tree\n";

    @TempDir
    Path tmp;
    SshFixture f;
    Path secret;
    Path local;

    @BeforeEach
    void start() throws Exception {
        f = new SshFixture(tmp.resolve("serve"));
        // Outside the tree: a root-only directory with a 0600 canary, a file a write could clobber
        // and a name a listing could show.
        secret = Files.createDirectories(tmp.resolve("secret"));
        Files.writeString(secret.resolve("canary"), SECRET);
        Files.writeString(secret.resolve("target"), SECRET);
        Files.writeString(secret.resolve(SECRET_NAME), SECRET);
        for (Path p : List.of(secret.resolve("canary"), secret.resolve("target"), secret.resolve(SECRET_NAME))) {
            Files.setPosixFilePermissions(p, PosixFilePermissions.fromString("rw-------"));
        }
        Files.setPosixFilePermissions(secret, PosixFilePermissions.fromString("rwx------"));
        local = Files.createDirectories(tmp.resolve("local"));
        f.start();
    }

    @AfterEach
    void stop() {
        f.close();
    }

    /**
     * Makes {@code dir/name} alternate, as fast as renames go, between a real directory holding
     * a file {@code canary} and a symbolic link to {@code outside}, until {@code stop}.
     */
    static Runnable swapper(Path dir, String name, Path outside, AtomicBoolean stop, AtomicLong swaps) {
        return () -> {
            try {
                Path d = dir.resolve(name);
                Path real = dir.resolve(name + ".dir");
                Path link = dir.resolve(name + ".link");
                Files.createDirectories(d);
                Files.writeString(d.resolve("canary"), INSIDE);
                Files.writeString(d.resolve("target"), INSIDE);
                Files.createSymbolicLink(link, outside);
                while (!stop.get()) {
                    Files.move(d, real);
                    Files.move(link, d);
                    Files.move(d, link);
                    Files.move(real, d);
                    swaps.incrementAndGet();
                }
            } catch (IOException e) {
                throw new java.io.UncheckedIOException(e);
            }
        };
    }

    /** The path from {@code /} to the canary directory, for links to {@code /}. */
    String fromSlash() {
        return secret.toString().substring(1);
    }

    @Test
    void swappingDirectoriesForLinksNeverLeadsAClientOutOfTheTree() throws Exception {
        Prerequisites.requireCommand("sshfs", "apt-get install sshfs");
        Prerequisites.require("/dev/fuse", Files.exists(Path.of("/dev/fuse")), "a kernel with FUSE (and /dev/fuse in the container)");
        byte[] before = Files.readAllBytes(secret.resolve("target"));
        long mtime = Files.getLastModifiedTime(secret.resolve("target")).toMillis();
        Path upload = Files.writeString(tmp.resolve("upload.txt"), "uploaded\n");
        AtomicBoolean stop = new AtomicBoolean();
        AtomicLong swaps = new AtomicLong();
        ConcurrentLinkedQueue<String> seen = new ConcurrentLinkedQueue<>();
        AtomicLong attempts = new AtomicLong();
        Path mnt = Files.createDirectories(tmp.resolve("mnt"));
        mountSshfs(mnt);
        ExecutorService pool = Executors.newFixedThreadPool(9);
        List<Future<?>> work = new ArrayList<>();
        long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
        try {
            // Swapped to the root-only directory, and to / (then reached by the canary's full path).
            work.add(pool.submit(swapper(f.outputs, "d", secret, stop, swaps)));
            work.add(pool.submit(swapper(f.outputs, "r", Path.of("/"), stop, swaps)));
            work.add(pool.submit(swapper(f.sources, "w", secret, stop, swaps)));
            String readPaths = "outputs/d/canary outputs/r/" + fromSlash() + "/canary";
            // sftp: a reader downloads and lists, the owner uploads, in batches.
            work.add(pool.submit(() -> loop(end, attempts, i -> {
                StringBuilder batch = new StringBuilder();
                for (int k = 0; k < 40; k++) {
                    batch.append("-get /outputs/d/canary ").append(local.resolve("sftp-d-" + i + "-" + k)).append('\n');
                    batch.append("-get /outputs/r/").append(fromSlash()).append("/canary ")
                            .append(local.resolve("sftp-r-" + i + "-" + k)).append('\n');
                    batch.append("-ls /outputs/d\n-ls /outputs/r/").append(fromSlash()).append('\n');
                }
                SshFixture.Run r = f.sftp(f.readerKey, "reader", batch.toString());
                seen.add(r.out() + r.err());
            })));
            work.add(pool.submit(() -> loop(end, attempts, i -> {
                StringBuilder batch = new StringBuilder();
                for (int k = 0; k < 40; k++) {
                    batch.append("-put ").append(upload).append(" /sources/w/target\n");
                    batch.append("-get /sources/w/canary ").append(local.resolve("owner-" + i + "-" + k)).append('\n');
                }
                SshFixture.Run r = f.sftp(f.ownerKey, "owner", batch.toString());
                seen.add(r.out() + r.err());
            })));
            // scp in both modes.
            for (boolean legacy : new boolean[]{true, false}) {
                work.add(pool.submit(() -> loop(end, attempts, i -> {
                    for (String p : readPaths.split(" ")) {
                        SshFixture.Run r = f.scp(f.readerKey, legacy, "reader@127.0.0.1:/" + p,
                                local.resolve("scp-" + legacy + "-" + i + "-" + p.length()).toString());
                        seen.add(r.out() + r.err());
                    }
                    SshFixture.Run w = f.scp(f.ownerKey, legacy, upload.toString(), "owner@127.0.0.1:/sources/w/target");
                    seen.add(w.out() + w.err());
                })));
            }
            // sshfs: reads and listings through the kernel's FUSE client.
            work.add(pool.submit(() -> loop(end, attempts, i -> {
                for (int k = 0; k < 50; k++) {
                    for (Path p : List.of(mnt.resolve("d/canary"), mnt.resolve("r/" + fromSlash() + "/canary"))) {
                        try {
                            seen.add(Files.readString(p, StandardCharsets.ISO_8859_1));
                        } catch (Exception e) {
                            // The directory was a link or absent at that moment. The JDK lets the
                            // odd raw sun.nio.fs.UnixException out of a FUSE read that races.
                        }
                    }
                    for (Path p : List.of(mnt.resolve("d"), mnt.resolve("r/" + fromSlash()))) {
                        try (Stream<Path> s = Files.list(p)) {
                            s.forEach(e -> seen.add(e.getFileName().toString()));
                        } catch (Exception e) {
                            // likewise
                        }
                    }
                }
            })));
            for (int k = 3; k < work.size(); k++) {
                try {
                    work.get(k).get(120, TimeUnit.SECONDS);
                } catch (java.util.concurrent.ExecutionException e) {
                    throw new AssertionError("client " + k + " failed: " + e.getCause(), e.getCause());
                }
            }
        } finally {
            stop.set(true);
            pool.shutdown();
            assertTrue(pool.awaitTermination(60, TimeUnit.SECONDS), "the swappers and clients stop");
            SshFixture.Run u = SshFixture.run(List.of("fusermount3", "-u", mnt.toString()), 30);
            if (u.code() != 0) {
                SshFixture.run(List.of("umount", "-l", mnt.toString()), 30);
            }
        }
        String[] names = {"swapper d", "swapper r", "swapper w", "sftp reader", "sftp owner", "scp -O", "scp", "sshfs"};
        for (int k = 0; k < work.size(); k++) {
            try {
                work.get(k).get(); // a swapper or client that failed fails the test
            } catch (java.util.concurrent.ExecutionException e) {
                throw new AssertionError(names[k] + " failed: " + e.getCause(), e.getCause());
            }
        }
        assertTrue(swaps.get() > 1000, "the tree really changed under the clients: " + swaps.get() + " swaps");
        assertTrue(attempts.get() > 10, "the clients really ran: " + attempts.get() + " rounds");
        int insideReads = 0;
        try (Stream<Path> files = Files.list(local)) {
            for (Path p : files.toList()) {
                String got = Files.readString(p, StandardCharsets.ISO_8859_1);
                assertFalse(got.contains(SECRET), "a client downloaded the root-only file outside the tree: " + p);
                insideReads += got.equals(INSIDE) ? 1 : 0;
            }
        }
        for (String s : seen) {
            assertFalse(s.contains(SECRET), "a client read the root-only file outside the tree");
            assertFalse(s.contains(SECRET_NAME), "a client listed the directory outside the tree: " + s);
        }
        assertTrue(insideReads > 0, "reads inside the tree still worked while it changed");
        assertEquals(new String(before, StandardCharsets.ISO_8859_1),
                Files.readString(secret.resolve("target"), StandardCharsets.ISO_8859_1),
                "the root-owned file outside the tree was overwritten");
        assertEquals(mtime, Files.getLastModifiedTime(secret.resolve("target")).toMillis());
        try (Stream<Path> s = Files.list(secret)) {
            assertEquals(3, s.count(), "nothing was created outside the tree");
        }
    }

    @FunctionalInterface
    interface Round {
        void run(int i) throws Exception;
    }

    /** Runs rounds until {@code end} (at most 10000). */
    static Void loop(long end, AtomicLong attempts, Round round) throws Exception {
        for (int i = 0; i < 10000 && System.nanoTime() < end; i++) {
            round.run(i);
            attempts.incrementAndGet();
        }
        return null;
    }

    /** sshfs with the kernel's caches off, so every read and listing reaches the agent. */
    void mountSshfs(Path mnt) throws Exception {
        SshFixture.Run mount = f.sshfs(f.readerKey, "reader", "/outputs", mnt, "cache=no", "attr_timeout=0", "entry_timeout=0",
                "negative_timeout=0");
        assertEquals(0, mount.code(), mount.toString());
    }

    @Test
    void aRefusedAttributeChangeIsAnErrorTheClientSees() throws Exception {
        Files.writeString(secret.resolve("mode"), SECRET);
        Files.setPosixFilePermissions(secret.resolve("mode"), PosixFilePermissions.fromString("rw-------"));
        Files.createSymbolicLink(f.sources.resolve("out"), secret);
        SshFixture.Run r = f.sftp(f.ownerKey, "owner", "chmod 644 /sources/out/mode\n");
        assertNotEquals(0, r.code(), "the client is told: " + r);
        assertTrue(r.err().contains("Permission denied"), r.toString());
        assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(secret.resolve("mode"))));
        Files.writeString(f.sources.resolve("mine"), "x");
        SshFixture.Run chown = f.sftp(f.ownerKey, "owner", "chown 0 /sources/mine\n");
        assertNotEquals(0, chown.code(), "nobody gives a file away: " + chown);
        assertTrue(chown.err().contains("Permission denied"), chown.toString());
    }

    @Test
    void ownerLinksAreJudgedByWhereTheyReallyLand() throws Exception {
        // /sources/up leads back to /sources, so /sources/up/up/up is /sources itself: a link
        // made there with ../../.. would leave the area although the typed path is deep enough.
        Files.createSymbolicLink(f.sources.resolve("up"), Path.of("."));
        SshFixture.Run r = f.sftp(f.ownerKey, "owner", "ln -s ../../../etc /sources/up/up/up/x\n");
        assertNotEquals(0, r.code(), r.toString());
        assertTrue(r.err().contains("Permission denied"), r.toString());
        assertFalse(Files.exists(f.sources.resolve("x"), LinkOption.NOFOLLOW_LINKS), "no link was made");
        SshFixture.Run ok = f.sftp(f.ownerKey, "owner", "mkdir /sources/a\nln -s ../up /sources/a/fine\n");
        assertEquals(0, ok.code(), "a link that stays inside is made: " + ok);
        assertEquals(Path.of("../up"), Files.readSymbolicLink(f.sources.resolve("a/fine")));
        assertThrowsNoSuch(f.sources.resolve("x"));
    }

    static void assertThrowsNoSuch(Path p) {
        try {
            Files.readAttributes(p, java.nio.file.attribute.BasicFileAttributes.class, LinkOption.NOFOLLOW_LINKS);
            throw new AssertionError(p + " exists");
        } catch (NoSuchFileException expected) {
            // as it should be
        } catch (IOException e) {
            throw new AssertionError(e);
        }
    }
}
