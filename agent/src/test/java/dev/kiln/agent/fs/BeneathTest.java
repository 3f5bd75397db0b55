package dev.kiln.agent.fs;

import dev.kiln.agent.build.BuildUser;
import dev.kiln.agent.build.BuildUsers;
import dev.kiln.testkit.Prerequisites;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.AccessDeniedException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Root making directories only where nobody else can change the way. */
class BeneathTest {

    @TempDir
    Path tmp;

    @Test
    void makesMissingDirectoriesUnderARootOnlyAncestorAndHandsEachOver() throws Exception {
        Prerequisites.require("root", BuildUser.agentIsRoot(), "tests run as root (sudo), as the agent does");
        assertTrue(Beneath.onlyRootCanChange(tmp), "a root-owned 0700 directory in the sticky /tmp");
        List<Path> made = new ArrayList<>();
        Beneath.makeDirectories(tmp.resolve("a/b/c"), p -> made.add(Files.readSymbolicLink(p.getParent()).resolve(p.getFileName())));
        assertEquals(List.of(tmp.toRealPath().resolve("a"), tmp.toRealPath().resolve("a/b"), tmp.toRealPath().resolve("a/b/c")), made);
        assertTrue(Files.isDirectory(tmp.resolve("a/b/c"), LinkOption.NOFOLLOW_LINKS));
    }

    @Test
    void refusesWhereAnotherUserCouldPutALinkOnTheWay() throws Exception {
        Prerequisites.require("root", BuildUser.agentIsRoot(), "tests run as root (sudo), as the agent does");
        BuildUser user = BuildUser.resolve(null);
        Path theirs = Files.createDirectories(tmp.resolve("volume"));
        BuildUsers.giveTo(theirs, user);
        assertFalse(Beneath.onlyRootCanChange(theirs));
        Path secret = Files.createDirectories(tmp.resolve("secret"));
        Files.createSymbolicLink(theirs.resolve("work"), secret);
        assertThrows(AccessDeniedException.class, () -> Beneath.makeDirectories(theirs.resolve("work/sources"), p -> { }));
        assertFalse(Files.exists(secret.resolve("sources")), "nothing was made through the build user's link");
        Path open = Files.createDirectories(tmp.resolve("open"));
        Files.setPosixFilePermissions(open, PosixFilePermissions.fromString("rwxrwxrwx"));
        assertFalse(Beneath.onlyRootCanChange(open), "world-writable without the sticky bit");
    }
}
