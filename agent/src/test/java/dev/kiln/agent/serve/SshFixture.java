package dev.kiln.agent.serve;

import dev.kiln.agent.build.BuildUser;
import dev.kiln.testkit.Prerequisites;
import org.apache.sshd.client.SshClient;
import org.apache.sshd.client.session.ClientSession;
import org.apache.sshd.common.NamedResource;
import org.apache.sshd.common.config.keys.FilePasswordProvider;
import org.apache.sshd.common.config.keys.KeyUtils;
import org.apache.sshd.common.util.security.SecurityUtils;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Random;
import java.util.concurrent.TimeUnit;

/**
 * The embedded SSH server running in-process on a free loopback port, with an outputs tree, a
 * sources area, keys made by ssh-keygen and a known_hosts file, plus helpers to run the real
 * OpenSSH clients against it with bounded waits.
 */
final class SshFixture implements AutoCloseable {

    /** What a client process did. */
    record Run(int code, String out, String err) {
        @Override
        public String toString() {
            return "exit " + code + "\n--- stdout\n" + out + "\n--- stderr\n" + err;
        }
    }

    final Path dir;
    final Path outputs;
    final Path sources;
    final Path ownerKey;
    final Path readerKey;
    final Path strangerKey;
    final Path knownHosts;
    final Path ownerKeysFile;
    final Path readerKeysFile;
    SshServer server;
    ServeConfig config;
    /** What the owner may forward to; set before {@link #start()}. */
    ForwardPorts forwardPorts = ForwardPorts.NONE;

    SshFixture(Path dir) throws Exception {
        this.dir = dir;
        Prerequisites.requireCommand("ssh-keygen", "apt-get install openssh-client");
        outputs = Files.createDirectories(dir.resolve("outputs"));
        sources = Files.createDirectories(dir.resolve("sources"));
        ownerKey = keygen("owner", "ed25519");
        readerKey = keygen("reader", "rsa");
        strangerKey = keygen("stranger", "ed25519");
        ownerKeysFile = dir.resolve("owner_keys");
        readerKeysFile = dir.resolve("reader_keys");
        Files.writeString(ownerKeysFile, Files.readString(Path.of(ownerKey + ".pub")));
        Files.writeString(readerKeysFile, Files.readString(Path.of(readerKey + ".pub")));
        knownHosts = dir.resolve("known_hosts");
        giveToBuildUser(sources);
    }

    /** Starts the server with keys from files. */
    SshFixture start() throws IOException {
        return start(new AuthorizedKeys("kiln.ssh.owner-keys", ownerKeysFile.toString()),
                new AuthorizedKeys("kiln.ssh.reader-keys", readerKeysFile.toString()));
    }

    SshFixture start(AuthorizedKeys owner, AuthorizedKeys reader) throws IOException {
        config = new ServeConfig("127.0.0.1", 0, dir.resolve("state/ssh/ssh_host_ed25519_key"), outputs, sources,
                owner, reader, dir.resolve("state/ssh"), new BwrapSandbox(),
                ServeAccounts.resolve(null, BuildUser.resolve(null)), forwardPorts);
        server = new SshServer(config).start();
        Files.writeString(knownHosts, "[127.0.0.1]:" + server.port() + " " + server.hostKey().publicKeyLine() + "\n");
        return this;
    }

    static void giveToBuildUser(Path p) throws IOException {
        if (BuildUser.agentIsRoot()) {
            BuildUser u = BuildUser.resolve(null);
            Files.setAttribute(p, "unix:uid", u.uid(), LinkOption.NOFOLLOW_LINKS);
            Files.setAttribute(p, "unix:gid", u.gid(), LinkOption.NOFOLLOW_LINKS);
        }
    }

    int port() {
        return server.port();
    }

    private Path keygen(String name, String type) throws Exception {
        Path key = dir.resolve("id_" + name);
        List<String> cmd = new ArrayList<>(List.of("ssh-keygen", "-q", "-t", type, "-N", "", "-C", name, "-f", key.toString()));
        if (type.equals("rsa")) {
            cmd.addAll(List.of("-b", "3072"));
        }
        Run r = run(cmd, 60);
        if (r.code() != 0) {
            throw new IllegalStateException("ssh-keygen: " + r);
        }
        return key;
    }

    /**
     * A session of MINA's own {@code client} (already started) as {@code user} with one of the
     * fixture's private key files, authenticated, the server's host key checked.
     */
    ClientSession minaSession(SshClient client, String user, Path keyFile) throws Exception {
        client.setServerKeyVerifier((session, address, key) -> KeyUtils.compareKeys(key, server.hostKey().keyPair().getPublic()));
        ClientSession session = client.connect(user, "127.0.0.1", port()).verify(Duration.ofSeconds(20)).getSession();
        try (InputStream in = Files.newInputStream(keyFile)) {
            session.addPublicKeyIdentity(SecurityUtils.loadKeyPairIdentities(null, NamedResource.ofName(keyFile.toString()), in,
                    FilePasswordProvider.EMPTY).iterator().next());
            session.auth().verify(Duration.ofSeconds(20));
            return session;
        } catch (Exception | Error e) {
            session.close();
            throw e;
        }
    }

    /** Options every client gets: batch mode, strict host key checking against our known_hosts. */
    List<String> sshOptions(Path key) {
        return new ArrayList<>(List.of("-F", "none", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
                "-o", "UserKnownHostsFile=" + knownHosts, "-o", "GlobalKnownHostsFile=/dev/null",
                "-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none", "-o", "ConnectTimeout=10",
                "-o", "LogLevel=ERROR", "-i", key.toString()));
    }

    /** The ssh command line for rsync -e / sshfs: "ssh -p PORT options". */
    String sshCommand(Path key) {
        List<String> parts = new ArrayList<>(List.of("ssh", "-p", Integer.toString(port())));
        parts.addAll(sshOptions(key));
        return String.join(" ", parts);
    }

    /** ssh with exactly these options (no defaults added), as {@code user}, running {@code command}. */
    Run sshWith(List<String> options, String user, String... command) throws Exception {
        List<String> cmd = new ArrayList<>(List.of("ssh", "-p", Integer.toString(port())));
        cmd.addAll(options);
        cmd.add(user + "@127.0.0.1");
        cmd.addAll(List.of(command));
        return run(cmd, 60);
    }

    Run ssh(Path key, String user, String... command) throws Exception {
        return sshWith(sshOptions(key), user, command);
    }

    /** sftp in batch mode with the given commands on stdin. */
    Run sftp(Path key, String user, String batch) throws Exception {
        Path file = Files.createTempFile(dir, "batch", ".txt");
        Files.writeString(file, batch);
        List<String> cmd = new ArrayList<>(List.of("sftp", "-P", Integer.toString(port())));
        cmd.addAll(sshOptions(key));
        cmd.addAll(List.of("-b", file.toString(), user + "@127.0.0.1"));
        return run(cmd, 120);
    }

    Run scp(Path key, boolean legacy, String... args) throws Exception {
        List<String> cmd = new ArrayList<>(List.of("scp"));
        if (legacy) {
            cmd.add("-O");
        }
        cmd.addAll(List.of("-P", Integer.toString(port())));
        cmd.addAll(sshOptions(key));
        cmd.addAll(List.of(args));
        return run(cmd, 120);
    }

    /** Mounts {@code remote} (e.g. /outputs) at {@code mnt} with sshfs as {@code user}, plus any -o options given. */
    Run sshfs(Path key, String user, String remote, Path mnt, String... options) throws Exception {
        List<String> cmd = new ArrayList<>(List.of("sshfs", "-p", Integer.toString(port()), "-o", "ro"));
        for (String o : options) {
            cmd.addAll(List.of("-o", o));
        }
        for (String o : List.of("BatchMode=yes", "StrictHostKeyChecking=yes", "UserKnownHostsFile=" + knownHosts,
                "GlobalKnownHostsFile=/dev/null", "IdentitiesOnly=yes", "IdentityFile=" + key)) {
            cmd.addAll(List.of("-o", o));
        }
        cmd.addAll(List.of("-F", "/dev/null", user + "@127.0.0.1:" + remote, mnt.toString()));
        return run(cmd, 60);
    }

    Run rsync(Path key, String... args) throws Exception {
        List<String> cmd = new ArrayList<>(List.of("rsync", "-e", sshCommand(key)));
        cmd.addAll(List.of(args));
        return run(cmd, 120);
    }

    static Run run(List<String> cmd, int seconds) throws Exception {
        return run(cmd, seconds, null);
    }

    static Run run(List<String> cmd, int seconds, Path workDir) throws Exception {
        Path out = Files.createTempFile("kiln-ssh-out", ".txt");
        Path err = Files.createTempFile("kiln-ssh-err", ".txt");
        try {
            ProcessBuilder pb = new ProcessBuilder(cmd).redirectOutput(out.toFile()).redirectError(err.toFile())
                    .redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null")));
            if (workDir != null) {
                pb.directory(workDir.toFile());
            }
            pb.environment().remove("SSH_AUTH_SOCK");
            Process p = pb.start();
            if (!p.waitFor(seconds, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                p.waitFor(10, TimeUnit.SECONDS);
                throw new AssertionError("timed out after " + seconds + "s: " + String.join(" ", cmd) + "\n"
                        + Files.readString(err));
            }
            return new Run(p.exitValue(), Files.readString(out, StandardCharsets.UTF_8), Files.readString(err, StandardCharsets.UTF_8));
        } finally {
            Files.deleteIfExists(out);
            Files.deleteIfExists(err);
        }
    }

    /** A file of {@code size} pseudo-random bytes. */
    static Path randomFile(Path file, long size, long seed) throws IOException {
        Files.createDirectories(file.getParent());
        Random r = new Random(seed);
        byte[] buf = new byte[65536];
        try (var out = Files.newOutputStream(file)) {
            long left = size;
            while (left > 0) {
                r.nextBytes(buf);
                int n = (int) Math.min(buf.length, left);
                out.write(buf, 0, n);
                left -= n;
            }
        }
        return file;
    }

    static String sha256(Path file) throws Exception {
        MessageDigest md = MessageDigest.getInstance("SHA-256");
        try (var in = Files.newInputStream(file)) {
            byte[] buf = new byte[65536];
            int n;
            while ((n = in.read(buf)) >= 0) {
                md.update(buf, 0, n);
            }
        }
        return HexFormat.of().formatHex(md.digest());
    }

    @Override
    public void close() {
        if (server != null) {
            server.stop();
        }
    }
}
