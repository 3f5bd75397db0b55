package dev.kiln.agent.build;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;

/** Test set-up: gives what a test made to the build user, as an instance's volumes are. */
public final class BuildUsers {

    private BuildUsers() {
    }

    /** Makes {@code path} belong to {@code user} (nothing to do when the tests are not root). */
    public static void giveTo(Path path, BuildUser user) throws IOException {
        if (BuildUser.agentIsRoot()) {
            Files.setAttribute(path, "unix:uid", user.uid(), LinkOption.NOFOLLOW_LINKS);
            Files.setAttribute(path, "unix:gid", user.gid(), LinkOption.NOFOLLOW_LINKS);
        }
    }
}
