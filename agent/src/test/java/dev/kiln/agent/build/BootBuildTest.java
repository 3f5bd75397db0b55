package dev.kiln.agent.build;

import dev.kiln.agent.config.BootBuildSettings;
import dev.kiln.testkit.Prerequisites;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Optional;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The boot build with the real BuildManager, real processes as the unprivileged build user, and a
 * boot id file standing in for /proc/sys/kernel/random/boot_id (so a test can "reboot").
 */
class BootBuildTest {

    @TempDir
    Path dir;

    Path state;
    Path tree;
    Path bootId;
    BuildManager builds;

    @BeforeEach
    void setUp() throws IOException {
        Prerequisites.requireCommand("setsid", "apt-get install util-linux");
        if (BuildUser.agentIsRoot()) {
            boolean exists;
            try {
                BuildUser.resolve("kiln");
                exists = true;
            } catch (IllegalStateException e) {
                exists = false;
            }
            Prerequisites.require("the unprivileged build user 'kiln'", exists, "useradd --system --create-home kiln (bash .ci/install does it)");
        }
        state = dir.resolve("state");
        tree = Files.createDirectories(dir.resolve("mnt/builds/vibes"));
        BuildUser user = BuildUser.resolve(null);
        BuildUsers.giveTo(dir, user);
        BuildUsers.giveTo(tree, user);
        bootId = dir.resolve("boot_id");
        Files.writeString(bootId, "6f0c2a1e-0b8e-4c55-9a51-3d1f0e6b7a01\n");
        builds = manager();
    }

    @AfterEach
    void tearDown() {
        builds.close();
    }

    BuildManager manager() throws IOException {
        return new BuildManager(new BuildStore(state), new OsProcessLauncher(), Clock.systemUTC(),
                () -> BuildUser.resolve(null), new TupProfiles(null), Duration.ofSeconds(5));
    }

    BootBuild boot(BootBuildSettings settings) {
        return new BootBuild(builds, settings, bootId);
    }

    BootBuildSettings command(String script) {
        return new BootBuildSettings(tree.toString(), null, null, List.of("sh", "-c", script), Map.of("trigger", "boot"));
    }

    BuildRecord awaitEnd(String id) throws InterruptedException {
        return BuildManagerTest.awaitEnd(builds, id);
    }

    String log(String id) throws IOException {
        return BuildManagerTest.log(state, id);
    }

    @Test
    void startsTheBootBuildAsAnOrdinaryLabelledBuildOncePerBoot() throws Exception {
        BootBuildSettings settings = command("echo built in $PWD; echo run >> runs");
        BuildRecord first = boot(settings).run(Map.of()).orElseThrow();
        BuildRecord ended = awaitEnd(first.id());
        assertEquals(BuildState.SUCCEEDED, ended.state(), log(first.id()));
        assertEquals("built in " + tree + "\n", log(first.id()));
        assertEquals(Map.of("trigger", "boot", "kiln:boot", "true"), ended.spec().labels());
        assertEquals(List.of("sh", "-c", "echo built in $PWD; echo run >> runs"), ended.spec().argv());

        // The agent restarts in the same boot (systemd's Restart=on-failure): a new manager reads
        // the records from disk, and the boot build is found, not run again.
        builds.close();
        builds = manager();
        Optional<BuildRecord> again = boot(settings).run(Map.of());
        assertEquals(first.id(), again.orElseThrow().id());
        assertEquals(1, builds.list(10).size());
        assertEquals("run\n", Files.readString(tree.resolve("runs")));

        // The next boot of the instance runs it anew.
        Files.writeString(bootId, "0d4b9f3c-77aa-4e0e-8f21-5c6d7e8f9a02\n");
        BuildRecord next = boot(settings).run(Map.of()).orElseThrow();
        assertTrue(!next.id().equals(first.id()));
        assertEquals(BuildState.SUCCEEDED, awaitEnd(next.id()).state());
        assertEquals("run\nrun\n", Files.readString(tree.resolve("runs")));
    }

    @Test
    void anInterruptedBootBuildIsNotRerunInTheSameBoot() throws Exception {
        BootBuildSettings settings = command("echo started >> runs; sleep 60");
        BuildRecord first = boot(settings).run(Map.of()).orElseThrow();
        for (int i = 0; i < 200 && !Files.exists(tree.resolve("runs")); i++) {
            Thread.sleep(50);
        }
        builds.close(); // the agent stops: the build is interrupted
        builds = manager();
        BuildRecord found = boot(settings).run(Map.of()).orElseThrow();
        assertEquals(first.id(), found.id());
        assertEquals(BuildState.INTERRUPTED, found.state());
        assertEquals("started\n", Files.readString(tree.resolve("runs")));
    }

    @Test
    void isNotStartedWhenTheWorkTreesBootMountFailedAndSaysWhy() throws Exception {
        Path mount = dir.resolve("mnt/builds");
        String failure = "boot mount kiln.volumes.mounts[1] (vol-0123456789abcdef0 at " + mount + ") failed: volume"
                + " vol-0123456789abcdef0 did not appear within PT2S";
        BootBuild bootBuild = boot(command("echo should not run > ran"));
        assertEquals(Optional.empty(), bootBuild.run(Map.of(dir.resolve("mnt/sources"), "elsewhere", mount, failure)));
        assertEquals(List.of("boot build in " + tree + " not started: its work tree is on " + mount + ", whose " + failure
                + "; fix the volume (kiln volumes, kiln mount), then run the build with kiln build"), bootBuild.errors());
        assertEquals(0, builds.list(10).size());
        assertTrue(Files.notExists(tree.resolve("ran")));
    }

    @Test
    void aMissingWorkTreeIsReportedNotThrown() {
        Path missing = dir.resolve("mnt/nowhere");
        BootBuild bootBuild = boot(new BootBuildSettings(missing.toString(), null, null, List.of("true"), null));
        assertEquals(Optional.empty(), bootBuild.run(Map.of()));
        assertEquals(List.of("boot build in " + missing + " not started: work tree " + missing
                + " is not a directory on this agent"), bootBuild.errors());
    }

    @Test
    void noBootBuildConfiguredDoesNothing() {
        BootBuild bootBuild = boot(new BootBuildSettings(null, null, null, null, null));
        assertEquals(Optional.empty(), bootBuild.run(Map.of()));
        assertEquals(List.of(), bootBuild.errors());
        assertEquals(0, builds.list(10).size());
    }

    @Test
    void aTupBootBuildTakesItsProfilesFromProfilesDir() throws Exception {
        Prerequisites.requireCommand("tup", "apt-get install tup fuse3");
        BuildUser user = BuildUser.resolve(null);
        Files.writeString(tree.resolve("Tupfile"), ": foreach *.txt |> tr a-z A-Z < %f > %o |> %B.up\n");
        Files.writeString(tree.resolve("a.txt"), "quiet\n");
        try (var files = Files.list(tree)) {
            for (Path f : files.toList()) {
                BuildUsers.giveTo(f, user);
            }
        }
        Path profiles = Files.createDirectories(dir.resolve("profiles"));
        Files.writeString(profiles.resolve("loud.config"), "# the loud one\nCONFIG_LEVEL=11\n");
        Files.writeString(profiles.resolve("soft.config"), "CONFIG_LEVEL=1\n");
        BuildRecord r = boot(new BootBuildSettings(tree.toString(), List.of("loud"), profiles.toString(), null, null))
                .run(Map.of()).orElseThrow();
        BuildRecord ended = awaitEnd(r.id());
        assertEquals(BuildState.SUCCEEDED, ended.state(), log(r.id()));
        assertEquals("QUIET\n", Files.readString(tree.resolve("build-loud/a.up")));
        assertEquals("CONFIG_LEVEL=11\n", Files.readString(tree.resolve("build-loud/tup.config")));
        assertTrue(Files.notExists(tree.resolve("build-soft/a.up")), "only the named profile is built");
        assertEquals(List.of("loud"), ended.spec().profiles());
    }
}
