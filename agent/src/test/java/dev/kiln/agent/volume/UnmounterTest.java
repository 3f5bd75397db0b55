package dev.kiln.agent.volume;

import dev.kiln.agent.build.BuildManager;
import dev.kiln.agent.build.BuildRecord;
import dev.kiln.agent.build.BuildSpec;
import dev.kiln.agent.build.BuildState;
import dev.kiln.agent.build.BuildStore;
import dev.kiln.agent.build.BuildUser;
import dev.kiln.agent.build.OsProcessLauncher;
import dev.kiln.testkit.LoopDevice;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import static dev.kiln.agent.volume.Fixture.MIB;
import static dev.kiln.agent.volume.Fixture.mounted;
import static dev.kiln.agent.volume.Fixture.sh;
import static dev.kiln.agent.volume.Fixture.spec;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Honest unmounts on real loop devices, with real processes holding files on the mount: TERM,
 * then KILL, then a confirmed unmount; or, when it stays busy, still mounted and the holders named.
 */
class UnmounterTest {

    @TempDir
    Path dir;

    Fixture fx;
    VolumeService volumes;
    Path mp;
    final List<Process> children = new ArrayList<>();

    @BeforeEach
    void setUp() throws Exception {
        fx = new Fixture(dir);
    }

    void mountFresh(List<MountUsers> users) throws Exception {
        volumes = fx.service(Duration.ofSeconds(2), users);
        LoopDevice d = fx.loop(64 * MIB);
        mp = dir.resolve("mnt/builds");
        volumes.mount(spec(d.device(), mp, true));
        Files.writeString(mp.resolve("build.db"), "tup database");
    }

    @AfterEach
    void tearDown() throws Exception {
        for (Process p : children) {
            p.destroyForcibly();
            p.waitFor(10, TimeUnit.SECONDS);
        }
        if (volumes != null) {
            volumes.close();
        }
        fx.close();
    }

    /** A child process that holds build.db open (fd 3) and sleeps; with ignoreTerm it ignores TERM. */
    Process holder(boolean ignoreTerm) throws Exception {
        String script = (ignoreTerm ? "trap '' TERM; " : "") + "exec 3<\"$0\"; echo ready; exec sleep 600";
        Process p = new ProcessBuilder("sh", "-c", script, mp.resolve("build.db").toString()).redirectErrorStream(true).start();
        children.add(p);
        assertEquals('r', p.getInputStream().read(), "the holder started");
        // Wait until it is sleep (after exec) so its command line is settled.
        Instant giveUp = Instant.now().plusSeconds(10);
        while (!p.info().commandLine().orElse("").contains("sleep") && Instant.now().isBefore(giveUp)) {
            Thread.sleep(20);
        }
        return p;
    }

    @Test
    void stopsAProcessHoldingAFileWithTermThenUnmountsAndConfirms() throws Exception {
        mountFresh(List.of());
        Process p = holder(false);
        UnmountResult r = volumes.unmount(mp, Duration.ofSeconds(5));
        assertTrue(r.wasMounted());
        assertEquals(List.of(p.pid() + " sleep 600 (TERM)"), r.stopped());
        assertTrue(p.waitFor(5, TimeUnit.SECONDS));
        assertEquals(143, p.exitValue(), "ended by TERM");
        assertTrue(mounted(mp).isEmpty(), "gone from /proc/self/mountinfo");
    }

    @Test
    void killsAProcessThatIgnoresTermAfterTheGracePeriod() throws Exception {
        mountFresh(List.of());
        Process p = holder(true);
        Instant start = Instant.now();
        UnmountResult r = volumes.unmount(mp, Duration.ofMillis(700));
        assertTrue(Duration.between(start, Instant.now()).toMillis() >= 700, "TERM had its grace period first");
        assertEquals(List.of(p.pid() + " sleep 600 (KILL)"), r.stopped());
        assertTrue(p.waitFor(5, TimeUnit.SECONDS));
        assertEquals(137, p.exitValue(), "ended by KILL");
        assertTrue(mounted(mp).isEmpty());
    }

    @Test
    void staysMountedAndNamesTheHolderWhenItIsTheAgentItself() throws Exception {
        mountFresh(List.of());
        Process bystander = holder(false);
        long self = ProcessHandle.current().pid();
        try (FileChannel open = FileChannel.open(mp.resolve("build.db"), StandardOpenOption.READ)) {
            MountBusyException e = assertThrows(MountBusyException.class, () -> volumes.unmount(mp, Duration.ofSeconds(1)));
            String command = e.holders().stream().filter(h -> h.pid() == self).findFirst().orElseThrow().command();
            assertEquals(mp + " is busy and stays mounted: pid " + self + " (" + command + ") holds files on it and is the"
                    + " agent itself or its parent, which Kiln never signals; nothing was stopped", e.getMessage());
            assertTrue(command.contains("java"), command);
            assertTrue(mounted(mp).isPresent(), "still mounted");
            assertTrue(bystander.isAlive(), "nothing was stopped");
        }
    }

    @Test
    void unmountingWhatIsNotMountedSucceedsAndDoesNothing() throws Exception {
        mountFresh(List.of());
        assertTrue(volumes.unmount(mp, null).wasMounted());
        UnmountResult again = volumes.unmount(mp, null);
        assertFalse(again.wasMounted());
        assertEquals(List.of(), again.stopped());
    }

    @Test
    void refusesAMountKilnDidNotMake() throws Exception {
        volumes = fx.service(Duration.ofSeconds(2), List.of());
        LoopDevice d = fx.loop(64 * MIB);
        sh("mkfs.ext4", "-q", d.device().toString());
        Path other = Files.createDirectories(dir.resolve("mnt/other"));
        sh("mount", d.device().toString(), other.toString());
        VolumeNotFoundException e = assertThrows(VolumeNotFoundException.class, () -> volumes.unmount(other, null));
        assertEquals(other + " is mounted (ext4 from " + d.device() + ") but not by Kiln; Kiln unmounts only the mounts it"
                + " made", e.getMessage());
        assertTrue(mounted(other).isPresent());
    }

    @Test
    void refusesAVolumeThatHoldsALayerOfAMountedOverlay() throws Exception {
        mountFresh(List.of());
        Path lower = Files.createDirectories(dir.resolve("sources"));
        Path tree = dir.resolve("work/vibes");
        volumes.mount(new MountSpec(null, tree, null, false, false, false, false, "", null, lower, mp.resolve("vibes")));
        VolumeRefusedException e = assertThrows(VolumeRefusedException.class, () -> volumes.unmount(mp, null));
        assertEquals(mp + " holds a layer (" + mp.resolve("vibes") + ") of the overlay at " + tree + "; unmount " + tree
                + " first; it stays mounted", e.getMessage());
        assertTrue(volumes.unmount(tree, null).wasMounted());
        assertTrue(volumes.unmount(mp, null).wasMounted());
    }

    @Test
    void stopsAProcessHoldingAFileThroughAnOverlayWorkTree() throws Exception {
        mountFresh(List.of());
        Path lower = Files.createDirectories(dir.resolve("sources"));
        Files.writeString(lower.resolve("track.wav"), "master");
        Path tree = dir.resolve("work/vibes");
        volumes.mount(new MountSpec(null, tree, null, false, false, false, false, "", null, lower, mp.resolve("vibes")));
        Process p = new ProcessBuilder("sh", "-c", "exec 3<\"$0\"; echo ready; exec sleep 600",
                tree.resolve("track.wav").toString()).start();
        children.add(p);
        assertEquals('r', p.getInputStream().read());
        UnmountResult r = volumes.unmount(tree, Duration.ofSeconds(5));
        assertEquals(1, r.stopped().size(), r.stopped().toString());
        assertTrue(r.stopped().get(0).startsWith(p.pid() + " "), r.stopped().toString());
        assertTrue(mounted(tree).isEmpty());
        assertTrue(mounted(mp).isPresent(), "the builds volume under it stays mounted");
    }

    @Test
    void unmountAllTakesOverlaysFirstThenTheVolumes() throws Exception {
        mountFresh(List.of());
        LoopDevice sources = fx.loop(64 * MIB);
        Path src = dir.resolve("mnt/sources");
        volumes.mount(spec(sources.device(), src, true));
        Files.createDirectories(src.resolve("vibes"));
        Path tree = dir.resolve("work/vibes");
        volumes.mount(new MountSpec(null, tree, null, false, false, false, false, "", null, src.resolve("vibes"),
                mp.resolve("vibes")));
        assertEquals(List.of("unmounted " + tree, "unmounted " + mp, "unmounted " + src).stream().sorted().toList(),
                volumes.unmountAll(Duration.ofSeconds(2)).stream().sorted().toList());
        assertTrue(volumes.unmountAll(Duration.ofSeconds(2)).isEmpty(), "nothing left to unmount");
        for (Path p : List.of(tree, mp, src)) {
            assertTrue(mounted(p).isEmpty(), p + " is unmounted");
        }
    }

    @Test
    void cancelsBuildsWhoseWorkTreeIsOnTheMountFirst() throws Exception {
        BuildUser user;
        try {
            user = BuildUser.resolve(null);
        } catch (IllegalStateException e) {
            fx.owner(); // fails (CI) or skips with what to install
            throw e;
        }
        Path state = dir.resolve("builds-state");
        BuildManager builds = new BuildManager(new BuildStore(state), new OsProcessLauncher(), Clock.systemUTC(),
                () -> BuildUser.resolve(null), new dev.kiln.agent.build.TupProfiles(null), Duration.ofSeconds(5));
        try {
            mountFresh(List.of(builds));
            for (Path p : List.of(dir, dir.resolve("mnt"))) {
                Files.setPosixFilePermissions(p, PosixFilePermissions.fromString("rwxr-xr-x"));
            }
            Path tree = Files.createDirectories(mp.resolve("tree"));
            dev.kiln.agent.build.BuildUsers.giveTo(tree, user);
            BuildRecord b = builds.start(new BuildSpec(tree, false, List.of(), List.of(), List.of("sleep", "600"), Map.of(),
                    false, "", Map.of()));
            Thread.sleep(300);
            UnmountResult r = volumes.unmount(mp, Duration.ofSeconds(2));
            assertEquals(List.of("build " + b.id() + " (cancelled)"), r.stopped());
            assertEquals(BuildState.CANCELLED, builds.get(b.id()).state());
            assertTrue(mounted(mp).isEmpty());
        } finally {
            builds.close();
        }
    }
}
