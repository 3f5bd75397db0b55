package dev.kiln.agent.serve;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Everything the server refuses, as the real OpenSSH client experiences it. */
class SshRefusalTest {

    @TempDir
    Path tmp;
    SshFixture f;

    @BeforeEach
    void start() throws Exception {
        f = new SshFixture(tmp);
        Files.writeString(f.outputs.resolve("file.txt"), "served\n");
        f.start();
    }

    @AfterEach
    void stop() {
        f.close();
    }

    private List<String> noKeyOptions() {
        return List.of("-F", "none", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
                "-o", "UserKnownHostsFile=" + f.knownHosts, "-o", "GlobalKnownHostsFile=/dev/null",
                "-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none", "-o", "IdentityFile=/dev/null");
    }

    @Test
    void refusesAClientWithNoKey() throws Exception {
        SshFixture.Run r = f.sshWith(noKeyOptions(), "reader", "sha256sum", "/outputs/file.txt");
        assertEquals(255, r.code(), r.toString());
        assertTrue(r.err().contains("Permission denied (publickey)"), r.toString());
    }

    @Test
    void refusesAWrongKeyAndAKeyOfTheOtherKind() throws Exception {
        SshFixture.Run stranger = f.ssh(f.strangerKey, "reader", "sha256sum", "/outputs/file.txt");
        assertEquals(255, stranger.code(), stranger.toString());
        assertTrue(stranger.err().contains("Permission denied (publickey)"), stranger.toString());
        SshFixture.Run readerAsOwner = f.ssh(f.readerKey, "owner", "sha256sum", "/outputs/file.txt");
        assertEquals(255, readerAsOwner.code(), readerAsOwner.toString());
    }

    @Test
    void offersOnlyPublickeyAuthenticationSoPasswordsAreNeverAsked() throws Exception {
        List<String> opts = new ArrayList<>(noKeyOptions());
        opts.addAll(List.of("-o", "PreferredAuthentications=password,keyboard-interactive", "-o", "PubkeyAuthentication=no"));
        SshFixture.Run r = f.sshWith(opts, "reader", "true");
        assertEquals(255, r.code(), r.toString());
        assertTrue(r.err().contains("Permission denied (publickey)"), "only publickey is offered: " + r);
    }

    @Test
    void refusesUnknownUserNamesEvenWithAnAuthorizedKey() throws Exception {
        for (String user : List.of("root", "kiln", "admin", "Owner")) {
            SshFixture.Run r = f.ssh(f.ownerKey, user, "sha256sum", "/outputs/file.txt");
            assertEquals(255, r.code(), user + ": " + r);
            assertTrue(r.err().contains("Permission denied (publickey)"), user + ": " + r);
        }
    }

    @Test
    void refusesAShellAndEveryOtherCommand() throws Exception {
        List<String> opts = new ArrayList<>(f.sshOptions(f.ownerKey));
        opts.add("-tt");
        SshFixture.Run shell = f.sshWith(opts, "owner");
        assertNotEquals(0, shell.code(), shell.toString());
        assertTrue((shell.out() + shell.err()).contains("no shell here"), shell.toString());

        for (String[] cmd : new String[][]{{"ls", "/"}, {"cat", "/etc/passwd"}, {"sh", "-c", "id"}, {"bash"},
                {"sha256sum /outputs/file.txt; id"}, {"rsync", "--daemon"}, {"echo $(id)"}, {"scp", "/outputs/file.txt", "/tmp/x"},
                {"internal-sftp"}}) {
            SshFixture.Run r = f.ssh(f.ownerKey, "owner", cmd);
            assertEquals(126, r.code(), String.join(" ", cmd) + ": " + r);
            assertTrue(r.err().contains("kiln-agent:"), String.join(" ", cmd) + ": " + r);
            assertFalse(r.out().contains("root:"), r.toString());
        }
    }

    @Test
    void refusesPortAgentAndX11Forwarding() throws Exception {
        int port = dev.kiln.testkit.FreePorts.loopbackPort();
        List<String> local = new ArrayList<>(List.of("ssh", "-p", Integer.toString(f.port())));
        local.addAll(f.sshOptions(f.ownerKey));
        local.addAll(List.of("-N", "-L", port + ":127.0.0.1:" + f.port(), "owner@127.0.0.1"));
        Path lerr = tmp.resolve("l.err");
        Process l = new ProcessBuilder(local).redirectError(lerr.toFile()).redirectOutput(tmp.resolve("l.out").toFile()).start();
        try {
            byte[] got = null;
            for (int i = 0; i < 100 && got == null; i++) {
                try (java.net.Socket s = new java.net.Socket("127.0.0.1", port)) {
                    s.setSoTimeout(10_000);
                    got = s.getInputStream().readAllBytes();
                } catch (java.io.IOException e) {
                    Thread.sleep(100);
                }
            }
            assertEquals(0, got == null ? -1 : got.length, "the forwarded connection carries nothing");
        } finally {
            l.destroy();
            l.waitFor(10, java.util.concurrent.TimeUnit.SECONDS);
        }

        List<String> remote = new ArrayList<>(f.sshOptions(f.ownerKey));
        remote.addAll(List.of("-o", "ExitOnForwardFailure=yes", "-N", "-R", "127.0.0.1:" + port + ":127.0.0.1:22"));
        SshFixture.Run rr = f.sshWith(remote, "owner");
        assertNotEquals(0, rr.code(), rr.toString());
        assertTrue(rr.err().toLowerCase().contains("remote port forwarding failed"), rr.toString());

        // -W asks the server to open a TCP connection for us: refused.
        List<String> direct = new ArrayList<>(f.sshOptions(f.ownerKey));
        direct.addAll(List.of("-W", "127.0.0.1:" + f.port()));
        SshFixture.Run d = f.sshWith(direct, "owner");
        assertNotEquals(0, d.code(), d.toString());

        // Agent and X11 forwarding requests are refused; the (allowed) command still runs and says nothing was forwarded.
        List<String> agent = new ArrayList<>(f.sshOptions(f.ownerKey));
        agent.addAll(List.of("-o", "ForwardAgent=yes", "-o", "IdentityAgent=none", "-X"));
        SshFixture.Run a = f.sshWith(agent, "owner", "sha256sum", "/outputs/file.txt");
        assertEquals(0, a.code(), a.toString());
    }

    @Test
    void aMalformedOrUnreadableKeysFileRejectsEveryone() throws Exception {
        f.close();
        Files.writeString(f.ownerKeysFile, Files.readString(Path.of(f.ownerKey + ".pub")) + "ssh-ed25519 not-base64!!\n");
        f.start(new AuthorizedKeys("kiln.ssh.owner-keys", f.ownerKeysFile.toString()),
                new AuthorizedKeys("kiln.ssh.reader-keys", tmp.resolve("missing_keys").toString()));
        SshFixture.Run owner = f.ssh(f.ownerKey, "owner", "sha256sum", "/outputs/file.txt");
        assertEquals(255, owner.code(), "a malformed line fails the whole file closed: " + owner);
        SshFixture.Run reader = f.ssh(f.readerKey, "reader", "sha256sum", "/outputs/file.txt");
        assertEquals(255, reader.code(), "an unreadable file lets nobody in: " + reader);

        // Fixing the file takes effect at the next login, without a restart.
        Files.writeString(f.ownerKeysFile, Files.readString(Path.of(f.ownerKey + ".pub")));
        SshFixture.Run fixed = f.ssh(f.ownerKey, "owner", "sha256sum", "/outputs/file.txt");
        assertEquals(0, fixed.code(), fixed.toString());
    }

    @Test
    void inlineKeysWorkAsAFileDoes() throws Exception {
        f.close();
        f.start(new AuthorizedKeys("kiln.ssh.owner-keys", "# the owner\n" + Files.readString(Path.of(f.ownerKey + ".pub"))),
                new AuthorizedKeys("kiln.ssh.reader-keys", null));
        assertEquals(0, f.ssh(f.ownerKey, "owner", "sha256sum", "/outputs/file.txt").code());
        assertEquals(255, f.ssh(f.readerKey, "reader", "sha256sum", "/outputs/file.txt").code());
    }

    @Test
    void dotDotAndSymbolicLinksCannotLeaveTheTree() throws Exception {
        Files.createSymbolicLink(f.outputs.resolve("etc"), Path.of("/etc"));
        Files.createSymbolicLink(f.outputs.resolve("passwd"), Path.of("../../../../../../etc/passwd"));
        Files.createSymbolicLink(f.outputs.resolve("inside"), Path.of("file.txt"));
        Path local = Files.createDirectories(tmp.resolve("local"));
        for (String path : List.of("/outputs/etc/passwd", "/outputs/passwd", "/../../etc/passwd", "/outputs/../../etc/passwd",
                "/outputs/../sources/../../etc/passwd", "../etc/passwd")) {
            SshFixture.Run r = f.sftp(f.ownerKey, "owner", "get " + path + " " + local.resolve("x") + "\n");
            assertNotEquals(0, r.code(), path + ": " + r);
            assertFalse(Files.exists(local.resolve("x")), path);
        }
        SshFixture.Run ok = f.sftp(f.readerKey, "reader", "get /outputs/inside " + local.resolve("inside") + "\n");
        assertEquals(0, ok.code(), "a link that stays inside is followed: " + ok);
        assertEquals("served\n", Files.readString(local.resolve("inside")));

        SshFixture.Run ls = f.sftp(f.readerKey, "reader", "ls -l /outputs\nls /outputs/etc\n");
        assertFalse(ls.out().contains("passwd "), ls.toString());

        SshFixture.Run sum = f.ssh(f.readerKey, "reader", "sha256sum", "/outputs/passwd", "/outputs/etc/passwd", "../../etc/passwd");
        assertEquals(1, sum.code(), sum.toString());
        assertFalse(sum.out().contains("passwd"), sum.toString());

        // An owner cannot plant an escaping link either.
        SshFixture.Run ln = f.sftp(f.ownerKey, "owner", "ln -s /etc/passwd /sources/pw\n");
        assertNotEquals(0, ln.code(), ln.toString());
        assertTrue(ln.err().toLowerCase().contains("permission denied"), ln.toString());
        assertFalse(Files.exists(f.sources.resolve("pw"), java.nio.file.LinkOption.NOFOLLOW_LINKS));
    }

    @Test
    void offersOnlyModernAlgorithms() throws Exception {
        for (String[] weak : new String[][]{{"-c", "aes128-cbc"}, {"-c", "aes128-ctr"}, {"-o", "KexAlgorithms=diffie-hellman-group14-sha1"},
                {"-o", "KexAlgorithms=ecdh-sha2-nistp256"}, {"-o", "HostKeyAlgorithms=ssh-rsa"}, {"-o", "MACs=hmac-sha1", "-c", "aes128-ctr"}}) {
            List<String> opts = new ArrayList<>(f.sshOptions(f.ownerKey));
            opts.set(opts.indexOf("LogLevel=ERROR"), "LogLevel=INFO"); // ssh says "no matching ..." at INFO
            opts.addAll(List.of(weak));
            SshFixture.Run r = f.sshWith(opts, "owner", "sha256sum", "/outputs/file.txt");
            assertEquals(255, r.code(), String.join(" ", weak) + ": " + r);
            assertTrue(r.err().contains("no matching"), String.join(" ", weak) + ": " + r);
        }
        for (String cipher : List.of("aes128-gcm@openssh.com", "aes256-gcm@openssh.com", "chacha20-poly1305@openssh.com")) {
            List<String> opts = new ArrayList<>(f.sshOptions(f.ownerKey));
            opts.addAll(List.of("-c", cipher));
            SshFixture.Run r = f.sshWith(opts, "owner", "sha256sum", "/outputs/file.txt");
            assertEquals(0, r.code(), cipher + ": " + r);
        }
        // An RSA user key signs with SHA-2 only: refusing ssh-rsa (SHA-1) signatures still lets it in.
        List<String> sha2 = new ArrayList<>(f.sshOptions(f.readerKey));
        sha2.addAll(List.of("-o", "PubkeyAcceptedAlgorithms=rsa-sha2-512,rsa-sha2-256"));
        assertEquals(0, f.sshWith(sha2, "reader", "sha256sum", "/outputs/file.txt").code());
        List<String> sha1 = new ArrayList<>(f.sshOptions(f.readerKey));
        sha1.addAll(List.of("-o", "PubkeyAcceptedAlgorithms=ssh-rsa"));
        assertEquals(255, f.sshWith(sha1, "reader", "sha256sum", "/outputs/file.txt").code());
    }
}
