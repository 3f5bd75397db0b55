package dev.kiln.controller.ssh;

import dev.kiln.controller.ExitCodes;
import dev.kiln.controller.KilnException;
import dev.kiln.controller.client.AgentEndpoint;
import dev.kiln.proto.agent.v1.StatusResponse;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Locale;

/**
 * An agent's embedded SSH server as OpenSSH clients reach it: host, port, user, the controller's
 * key, and Kiln's own known_hosts file holding the agent's host key. The host key comes from the
 * agent's Status over mutually authenticated gRPC, so ssh can check it strictly from the first
 * connection on.
 *
 * @param alias      the Host alias in an ssh config ({@code kiln-local}, {@code kiln-HOST})
 * @param host       where the SSH server is
 * @param port       its port
 * @param user       {@code owner} or {@code reader}
 * @param identity   the controller's private key
 * @param knownHosts Kiln's known_hosts file
 */
public record SshTarget(String alias, String host, int port, String user, Path identity, Path knownHosts) {

    /**
     * The client's cipher preference. SSH picks the first of the client's list that the server
     * supports, and OpenSSH's client puts chacha20-poly1305 first; kiln-agent's server computes
     * ChaCha20 in Java and AES-GCM with the JDK's intrinsics, two to three times as fast
     * (docs/performance.md), so Kiln's client settings ask for AES-GCM first.
     */
    public static final String CIPHERS = "aes128-gcm@openssh.com,aes256-gcm@openssh.com,chacha20-poly1305@openssh.com";

    /**
     * The target an agent's Status describes, after writing its host key to {@code knownHosts}.
     *
     * @throws KilnException when the agent does not serve over SSH, or its key and fingerprint disagree
     */
    public static SshTarget from(StatusResponse status, AgentEndpoint endpoint, boolean local, String user,
                                 Path identity, Path knownHosts) {
        return from(status, endpoint, local ? "kiln-local" : null, user, identity, knownHosts);
    }

    /** As above, with the Host alias to use ({@code kiln-local}, {@code kiln-ID}), or null for {@code kiln-HOST}. */
    public static SshTarget from(StatusResponse status, AgentEndpoint endpoint, String alias, String user,
                                 Path identity, Path knownHosts) {
        if (status.getSshPort() == 0) {
            throw new KilnException(ExitCodes.UNSUPPORTED, "the agent at " + endpoint + " does not serve over SSH "
                    + "(kiln.ssh.enabled is not true in its settings" + ("kiln-local".equals(alias) ? "; restart it with `kiln down --local` and `kiln up --local`"
                    : alias != null ? "; a launched instance serves only when it has a volume: launch one with e.g. --volume builds:latest" : "")
                    + ")");
        }
        if (status.getSshHostPublicKey().isEmpty()) {
            throw new KilnException(ExitCodes.UNSUPPORTED, "the agent at " + endpoint + " does not report its SSH host key "
                    + "(an older kiln-agent); add its key to " + knownHosts + " by hand, checking fingerprint "
                    + status.getSshHostKeyFingerprint());
        }
        String fingerprint = fingerprint(status.getSshHostPublicKey());
        if (!fingerprint.equals(status.getSshHostKeyFingerprint())) {
            throw new KilnException(ExitCodes.FAILURE, "the agent's SSH host key does not match the fingerprint it reports ("
                    + fingerprint + " vs " + status.getSshHostKeyFingerprint() + "); not trusting it");
        }
        if (!Files.isRegularFile(identity)) {
            throw new KilnException(ExitCodes.CONFIG, "no SSH key at " + identity + "; run `kiln init`");
        }
        String name = alias != null ? alias : "kiln-" + endpoint.host().replaceAll("[^A-Za-z0-9._-]", "-");
        SshTarget target = new SshTarget(name, endpoint.host(), status.getSshPort(), user, identity, knownHosts);
        target.writeKnownHost(status.getSshHostPublicKey());
        return target;
    }

    /** The user name to log in as: {@code owner} (default) or {@code reader}. */
    public static String user(String given) {
        String u = given == null ? "owner" : given.toLowerCase(Locale.ROOT);
        if (!u.equals("owner") && !u.equals("reader")) {
            throw new KilnException(ExitCodes.USAGE, "--user must be owner or reader, not '" + given + "'");
        }
        return u;
    }

    /** {@code SHA256:...} of an OpenSSH public key line, as ssh-keygen -l prints it. */
    public static String fingerprint(String publicKeyLine) {
        String[] parts = publicKeyLine.trim().split("\\s+");
        if (parts.length < 2) {
            throw new KilnException(ExitCodes.FAILURE, "malformed SSH host key from the agent: " + publicKeyLine);
        }
        try {
            byte[] blob = Base64.getDecoder().decode(parts[1]);
            byte[] digest = MessageDigest.getInstance("SHA-256").digest(blob);
            return "SHA256:" + Base64.getEncoder().withoutPadding().encodeToString(digest);
        } catch (IllegalArgumentException | NoSuchAlgorithmException e) {
            throw new KilnException(ExitCodes.FAILURE, "malformed SSH host key from the agent: " + e.getMessage(), e);
        }
    }

    /** How known_hosts names this server: {@code host} on port 22, {@code [host]:port} otherwise. */
    public String knownHostsName() {
        return port == 22 ? host : "[" + host + "]:" + port;
    }

    /** Replaces this server's line in Kiln's known_hosts (0600) with {@code publicKeyLine}. */
    void writeKnownHost(String publicKeyLine) {
        String[] parts = publicKeyLine.trim().split("\\s+");
        String line = knownHostsName() + " " + parts[0] + " " + parts[1];
        try {
            Files.createDirectories(knownHosts.toAbsolutePath().getParent());
            List<String> lines = new ArrayList<>();
            if (Files.exists(knownHosts)) {
                for (String l : Files.readAllLines(knownHosts, StandardCharsets.UTF_8)) {
                    if (!l.startsWith(knownHostsName() + " ")) {
                        lines.add(l);
                    }
                }
            }
            lines.add(line);
            Path tmp = knownHosts.resolveSibling(knownHosts.getFileName() + ".tmp");
            Files.deleteIfExists(tmp);
            Files.createFile(tmp, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")));
            Files.write(tmp, lines, StandardCharsets.UTF_8);
            try {
                Files.move(tmp, knownHosts, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            } catch (AtomicMoveNotSupportedException e) {
                Files.move(tmp, knownHosts, StandardCopyOption.REPLACE_EXISTING);
            }
        } catch (IOException e) {
            throw new KilnException(ExitCodes.FAILURE, "cannot write " + knownHosts + ": " + e.getMessage(), e);
        }
    }

    /** The Host block for ~/.ssh/config (or {@code ssh -F}). */
    public String hostBlock() {
        return "Host " + alias + "\n"
                + "  HostName " + host + "\n"
                + "  Port " + port + "\n"
                + "  User " + user + "\n"
                + "  IdentityFile " + quote(identity.toString()) + "\n"
                + "  IdentitiesOnly yes\n"
                + "  Ciphers " + CIPHERS + "\n"
                + "  UserKnownHostsFile " + quote(knownHosts.toString()) + "\n"
                + "  StrictHostKeyChecking yes\n";
    }

    /**
     * LocalForward lines for a Host block: each target on the same port of 127.0.0.1 here, a
     * comment naming the service (or the address to use) before each.
     */
    public static String localForwards(List<ForwardTarget> targets) {
        StringBuilder b = new StringBuilder();
        for (ForwardTarget t : targets) {
            b.append("  # ").append(t.describe()).append(": ").append(t.localAddress(t.port())).append('\n');
            b.append("  LocalForward 127.0.0.1:").append(t.port()).append(" 127.0.0.1:").append(t.port()).append('\n');
        }
        return b.toString();
    }

    /** ssh's options (without the destination) for this server: strict host key checking, batch mode. */
    public List<String> sshOptions() {
        return List.of("-p", Integer.toString(port), "-i", identity.toString(), "-o", "IdentitiesOnly=yes",
                "-o", "Ciphers=" + CIPHERS, "-o", "UserKnownHostsFile=" + knownHosts, "-o", "GlobalKnownHostsFile=/dev/null",
                "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-o", "ConnectTimeout=15",
                "-o", "ServerAliveInterval=15", "-o", "LogLevel=ERROR");
    }

    /** The {@code ssh ...} command line for {@code rsync -e}, quoted the way rsync splits it. */
    public String rsyncShell() {
        List<String> words = new ArrayList<>(List.of("ssh", "-F", "none"));
        words.addAll(sshOptions());
        StringBuilder b = new StringBuilder();
        for (String w : words) {
            if (b.length() > 0) {
                b.append(' ');
            }
            b.append(w.matches("[A-Za-z0-9_./=:@,+-]+") ? w : "'" + w.replace("'", "'\\''") + "'");
        }
        return b.toString();
    }

    /** {@code user@host:} with brackets for IPv6. */
    public String remotePrefix() {
        return user + "@" + (host.contains(":") ? "[" + host + "]" : host) + ":";
    }

    private static String quote(String s) {
        return s.contains(" ") ? "\"" + s + "\"" : s;
    }
}
