package dev.kiln.controller.local;

import dev.kiln.controller.config.CliEnvironment;
import dev.kiln.controller.config.KilnPaths;
import dev.kiln.controller.fleet.ManagedInstance;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.Properties;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * An instance whose `kiln launch` is still starting its agent is pending to every other kiln
 * command, not terminated: a concurrent launch's cap check used to read it, find no agent process
 * yet, and release it (marking it terminated and detaching its loop devices) while its agent came
 * up (seen as 49 of 50 instances in bench/ls-fanout).
 */
class LocalProviderPendingTest {

    @TempDir
    Path home;

    @org.junit.jupiter.api.BeforeEach
    void openHome() throws IOException {
        // As root, a home closed to others moves the fleet to /var/lib/kiln-fleet (FleetRootTest).
        Files.setPosixFilePermissions(home, java.nio.file.attribute.PosixFilePermissions.fromString("rwxr-xr-x"));
    }

    LocalProvider provider() {
        return new LocalProvider(KilnPaths.from(new CliEnvironment(Map.of(), home, System.out, System.err)));
    }

    void instance(String id, long launcherPid, Instant launched) throws IOException {
        Path dir = Files.createDirectories(home.resolve(".local/state/kiln/fleet/instances").resolve(id));
        Properties p = new Properties();
        p.setProperty("role", "server");
        p.setProperty("launched", launched.toString());
        p.setProperty("expires-at", launched.plusSeconds(3600).toString());
        p.setProperty("grpc-port", "1");
        p.setProperty("volumes", "0");
        p.setProperty("state", "pending");
        p.setProperty("launcher-pid", Long.toString(launcherPid));
        try (OutputStream out = Files.newOutputStream(dir.resolve("instance.properties"))) {
            p.store(out, null);
        }
    }

    @Test
    void aLaunchInProgressIsPendingAndCountsTowardsTheCap() throws Exception {
        // This JVM plays the launching `kiln launch`: alive, and started before the launch.
        instance("local-0000aaaa", ProcessHandle.current().pid(), Instant.now());
        List<ManagedInstance> active = provider().active();
        assertEquals(1, active.size());
        assertEquals("pending", active.get(0).state());
        assertEquals("pending", provider().get("local-0000aaaa").state(), "reading it again changes nothing");
    }

    @Test
    void aPendingInstanceWhoseLaunchDiedWithoutAnAgentIsTerminated() throws Exception {
        Process p = new ProcessBuilder("true").start();
        p.waitFor();
        instance("local-0000bbbb", p.pid(), Instant.now());
        assertEquals("terminated", provider().get("local-0000bbbb").state());
        assertEquals(List.of(), provider().active());
    }

    @Test
    void aReusedPidThatStartedAfterTheLaunchIsNotItsLauncher() throws Exception {
        // This JVM started before "launched" in the other tests; here the launch is dated before
        // this JVM existed, so a live process with that pid cannot be the launcher.
        instance("local-0000cccc", ProcessHandle.current().pid(), Instant.parse("2000-01-01T00:00:00Z"));
        assertEquals("terminated", provider().get("local-0000cccc").state());
    }
}
