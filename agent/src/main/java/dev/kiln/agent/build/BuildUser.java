package dev.kiln.agent.build;

import dev.kiln.agent.fs.FsAccess;
import dev.kiln.os.OsCommand;

import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;

/**
 * The unprivileged account builds run as.
 *
 * @param name the user name
 * @param uid  its uid
 * @param gid  its primary gid
 * @param home its home directory
 */
public record BuildUser(String name, int uid, int gid, Path home) {

    /**
     * This account's file access, for what the agent does in trees the build user can write: the
     * account's own when the agent is root, so a link or hard link put there leads nowhere the
     * account could not write itself; the agent's (its own user's) otherwise.
     */
    public FsAccess access() {
        return agentIsRoot() ? FsAccess.of(uid, gid) : FsAccess.own();
    }

    /**
     * The environment every process the agent runs as this user starts with (builds, the boot
     * script, services): a fixed PATH, its home and name, a UTF-8 locale.
     */
    public java.util.Map<String, String> environment() {
        return java.util.Map.of("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "HOME", home.toString(), "USER", name, "LOGNAME", name, "LANG", "C.UTF-8");
    }

    /** True when the agent runs as root (and so must switch user for builds). */
    public static boolean agentIsRoot() {
        return new com.sun.security.auth.module.UnixSystem().getUid() == 0;
    }

    /**
     * Resolves the build user: {@code configured} (default {@code kiln}) when the agent is root, or
     * the agent's own user otherwise. Builds never run as root.
     *
     * @throws IllegalStateException with what to do, when the user is missing or is root
     */
    public static BuildUser resolve(String configured) {
        if (!agentIsRoot()) {
            com.sun.security.auth.module.UnixSystem self = new com.sun.security.auth.module.UnixSystem();
            if (configured != null && !configured.isEmpty() && !configured.equals(self.getUsername())) {
                throw new IllegalStateException("kiln.builds.user is '" + configured + "' but the agent runs as '"
                        + self.getUsername() + "', not root, so it cannot switch users; unset kiln.builds.user or run the agent as root");
            }
            return new BuildUser(self.getUsername(), (int) self.getUid(), (int) self.getGid(),
                    Path.of(System.getProperty("user.home")));
        }
        String name = configured == null || configured.isEmpty() ? "kiln" : configured;
        BuildUser user = lookup(name).orElseThrow(() -> new IllegalStateException("build user '" + name
                + "' does not exist; create it (useradd --system --create-home " + name
                + ") or set kiln.builds.user to an unprivileged user"));
        if (user.uid() == 0) {
            throw new IllegalStateException("builds never run as root, and kiln.builds.user '" + name
                    + "' has uid 0; set it to an unprivileged user");
        }
        return user;
    }

    /** Any account's passwd entry (name, uid, primary gid, home), if it exists. */
    public static java.util.Optional<BuildUser> lookup(String name) {
        String entry = getent(name);
        if (entry == null) {
            return java.util.Optional.empty();
        }
        String[] f = entry.split(":", -1);
        return java.util.Optional.of(new BuildUser(f[0], Integer.parseInt(f[2]), Integer.parseInt(f[3]),
                Path.of(f[5].isEmpty() ? "/" : f[5])));
    }

    private static String getent(String name) {
        try {
            OsCommand.Result r = OsCommand.run(Duration.ofSeconds(10), List.of("getent", "passwd", name));
            String out = r.stdout().trim();
            return r.ok() && !out.isEmpty() ? out.lines().findFirst().orElse(null) : null;
        } catch (IOException e) {
            return null;
        }
    }
}
