package dev.kiln.agent.service;

import dev.kiln.agent.build.BuildUser;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;

/**
 * The directory the boot script and the services run in: {@code <state-dir>/work}, owned by the
 * build user, one per agent (so two local instances on one machine do not share it). The state
 * directory is root's, so nobody else can put anything in its place; it is changed without
 * following links all the same.
 */
public final class WorkDirectory {

    private WorkDirectory() {
    }

    /** Where it is. */
    public static Path of(Path stateDir) {
        return stateDir.resolve("work");
    }

    /** Creates it for {@code user} when missing, and gives it to the user. */
    public static Path prepare(Path stateDir, BuildUser user) throws IOException {
        Path dir = of(stateDir);
        if (!Files.exists(dir, LinkOption.NOFOLLOW_LINKS)) {
            Files.createDirectories(stateDir);
            Files.createDirectory(dir, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwxr-x---")));
        } else if (!Files.isDirectory(dir, LinkOption.NOFOLLOW_LINKS)) {
            throw new IOException(dir + " is not a directory; move it aside so the agent can make its work directory there");
        }
        if (BuildUser.agentIsRoot()) {
            Files.setAttribute(dir, "unix:uid", user.uid(), LinkOption.NOFOLLOW_LINKS);
            Files.setAttribute(dir, "unix:gid", user.gid(), LinkOption.NOFOLLOW_LINKS);
        }
        return dir;
    }
}
