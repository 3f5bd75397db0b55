package dev.kiln.agent.serve;

import dev.kiln.agent.build.BuildUser;
import dev.kiln.testkit.Prerequisites;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Defence in depth: a session has its account's file access, never root's, so a fault in the
 * path rules could not hand a client root's files. Shown with a root-only file that the path rules
 * allow (it is inside the tree) but the account may not read.
 */
class ServeAccountTest {

    @TempDir
    Path tmp;
    SshFixture f;

    @BeforeEach
    void start() throws Exception {
        Prerequisites.require("root", BuildUser.agentIsRoot(), "tests run as root (sudo), as the agent does");
        f = new SshFixture(tmp);
        Files.writeString(f.outputs.resolve("public.txt"), "everyone\n");
        Files.writeString(f.outputs.resolve("root-only.txt"), "root only\n");
        Files.setPosixFilePermissions(f.outputs.resolve("root-only.txt"), PosixFilePermissions.fromString("rw-------"));
        f.start();
    }

    @AfterEach
    void stop() {
        f.close();
    }

    @Test
    void readersReadWithTheServeAccountsAccessOverEveryProtocol() throws Exception {
        Path local = Files.createDirectories(tmp.resolve("local"));
        SshFixture.Run ok = f.sftp(f.readerKey, "reader", "get /outputs/public.txt " + local.resolve("public.txt") + "\n");
        assertEquals(0, ok.code(), ok.toString());
        assertEquals("everyone\n", Files.readString(local.resolve("public.txt")));

        SshFixture.Run sftp = f.sftp(f.readerKey, "reader", "get /outputs/root-only.txt " + local.resolve("a") + "\n");
        assertNotEquals(0, sftp.code(), sftp.toString());
        assertTrue(sftp.err().contains("Permission denied"), sftp.toString());
        for (boolean legacy : new boolean[]{true, false}) {
            SshFixture.Run scp = f.scp(f.readerKey, legacy, "reader@127.0.0.1:/outputs/root-only.txt", local.resolve("b").toString());
            assertNotEquals(0, scp.code(), scp.toString());
            assertTrue(scp.err().contains("Permission denied"), scp.toString());
        }
        SshFixture.Run rsync = f.rsync(f.readerKey, "reader@127.0.0.1:/outputs/root-only.txt", local.resolve("c").toString());
        assertNotEquals(0, rsync.code(), rsync.toString());
        assertTrue(rsync.err().contains("Permission denied"), rsync.toString());
        assertFalse(Files.exists(local.resolve("a")) || Files.exists(local.resolve("b")) || Files.exists(local.resolve("c")));
    }

    @Test
    void legacyScpSkipsAFileTheReaderMayNotReadAndSendsTheRest() throws Exception {
        Path local = Files.createDirectories(tmp.resolve("tree"));
        SshFixture.Run r = f.scp(f.readerKey, true, "-r", "reader@127.0.0.1:/outputs", local.toString());
        assertNotEquals(0, r.code(), r.toString());
        assertTrue(r.err().contains("scp: /outputs/root-only.txt: Permission denied"), r.toString());
        assertEquals("everyone\n", Files.readString(local.resolve("outputs/public.txt")), r.toString());
        assertFalse(Files.exists(local.resolve("outputs/root-only.txt")), r.toString());

        SshFixture.Run two = f.scp(f.readerKey, true, "reader@127.0.0.1:/outputs/root-only.txt /outputs/public.txt",
                local.resolve("b").toString());
        assertNotEquals(0, two.code(), two.toString());
        assertTrue(two.err().contains("scp: /outputs/root-only.txt: Permission denied"), two.toString());
        assertEquals("everyone\n", Files.readString(local.resolve("b")), two.toString());
    }

    @Test
    void theOwnersUploadsBelongToTheBuildUser() throws Exception {
        Path up = Files.writeString(tmp.resolve("up.txt"), "upload\n");
        SshFixture.Run r = f.sftp(f.ownerKey, "owner", "mkdir /sources/dir\nput " + up + " /sources/dir/up.txt\n");
        assertEquals(0, r.code(), r.toString());
        BuildUser u = BuildUser.resolve(null);
        for (Path p : new Path[]{f.sources.resolve("dir"), f.sources.resolve("dir/up.txt")}) {
            assertEquals(u.uid(), Files.getAttribute(p, "unix:uid"), p.toString());
            assertEquals(u.gid(), Files.getAttribute(p, "unix:gid"), p.toString());
        }
    }
}
