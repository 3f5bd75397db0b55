package dev.kiln.controller.local;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * As root, the local fleet must be reachable by the build user that runs the builds inside it; a
 * home of mode 0700 (root's on Debian) moves root's fleet to /var/lib/kiln-fleet rather than
 * leaving tup to fail with "chdir: Permission denied" (seen running bin/quickstart as root).
 */
class FleetRootTest {

    @TempDir
    Path tmp;

    @Test
    void anOpenHomeKeepsTheFleetInTheStateDirectory() throws Exception {
        Path home = Files.createDirectories(tmp.resolve("home"));
        Files.setPosixFilePermissions(tmp, PosixFilePermissions.fromString("rwxr-xr-x"));
        Files.setPosixFilePermissions(home, PosixFilePermissions.fromString("rwxr-xr-x"));
        Path state = home.resolve(".local/state/kiln");
        assertEquals(state.resolve("fleet"), LocalProvider.fleetRoot(state, true));
    }

    @Test
    void aClosedHomeMovesRootsFleetButNotAUsersOwn() throws Exception {
        Path home = Files.createDirectories(tmp.resolve("home"));
        Files.setPosixFilePermissions(tmp, PosixFilePermissions.fromString("rwxr-xr-x"));
        Files.setPosixFilePermissions(home, PosixFilePermissions.fromString("rwx------"));
        Path state = Files.createDirectories(home.resolve(".local/state/kiln"));
        assertEquals(LocalProvider.SYSTEM_FLEET, LocalProvider.fleetRoot(state, true));
        assertEquals(state.resolve("fleet"), LocalProvider.fleetRoot(state, false),
                "an unprivileged user's builds run as that user, who can reach its own home");
    }
}
