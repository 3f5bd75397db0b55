package dev.kiln.agent.volume;

import dev.kiln.testkit.LoopDevice;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static dev.kiln.agent.volume.Fixture.MIB;
import static dev.kiln.agent.volume.Fixture.sh;
import static dev.kiln.agent.volume.Fixture.spec;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Freezes on real filesystems, under leases that end by themselves. */
class FreezerTest {

    @TempDir
    Path dir;

    Fixture fx;
    VolumeService volumes;
    Path mp;

    /** A lease timer the test fires by hand. */
    static final class ManualTimer implements LeaseTimer {
        record Task(Runnable task, Duration delay, boolean[] cancelled) {
        }

        final List<Task> tasks = new ArrayList<>();

        @Override
        public synchronized Runnable schedule(Runnable task, Duration delay) {
            boolean[] cancelled = {false};
            tasks.add(new Task(task, delay, cancelled));
            return () -> cancelled[0] = true;
        }

        void fire(int i) {
            tasks.get(i).task().run();
        }
    }

    @BeforeEach
    void setUp() throws Exception {
        fx = new Fixture(dir);
    }

    @AfterEach
    void tearDown() throws Exception {
        if (volumes != null) {
            volumes.close();
        }
        fx.close();
    }

    void mountFresh(LeaseTimer timer) throws Exception {
        volumes = timer == null ? fx.service(Duration.ofSeconds(2), List.of()) : fx.service(Duration.ofSeconds(2), List.of(), timer);
        LoopDevice d = fx.loop(64 * MIB);
        mp = dir.resolve("mnt/data");
        volumes.mount(spec(d.device(), mp, true));
    }

    /** Starts a child that writes a file on the mount; it blocks while the filesystem is frozen. */
    Process writer(String name) throws Exception {
        return new ProcessBuilder("sh", "-c", "printf written > \"$0\"", mp.resolve(name).toString()).start();
    }

    @Test
    void thawsByItselfWhenTheLeaseRunsOutEvenIfTheCallerIsGone() throws Exception {
        mountFresh(null);
        Duration lease = Duration.ofSeconds(2);
        Instant thawBy = volumes.freeze(mp, lease, "snapshot-1");
        Instant frozenAt = Instant.now();
        assertTrue(Duration.between(frozenAt, thawBy).toMillis() <= lease.toMillis());
        // The caller is gone: nobody calls thaw. A write blocks until the lease ends.
        Process w = writer("after-freeze");
        assertFalse(w.waitFor(1, TimeUnit.SECONDS), "the write waits while the filesystem is frozen");
        assertTrue(w.waitFor(lease.plusSeconds(1).toMillis() - Duration.between(frozenAt, Instant.now()).toMillis(),
                TimeUnit.MILLISECONDS), "the write completes within the lease plus one second");
        Duration took = Duration.between(frozenAt, Instant.now());
        assertTrue(took.compareTo(lease.plusSeconds(1)) <= 0, "completed after " + took);
        assertEquals(0, w.exitValue());
        assertEquals("written", Files.readString(mp.resolve("after-freeze")));
        assertTrue(volumes.list().stream().noneMatch(VolumeInfo::frozen));
    }

    @Test
    void refusesToFreezeTheRootFilesystem() throws Exception {
        mountFresh(null);
        VolumeRefusedException e = assertThrows(VolumeRefusedException.class, () -> volumes.freeze(Path.of("/"), null, ""));
        assertEquals("refusing to freeze /: the root filesystem holds the system and the agent; freeze a data volume"
                + " instead; nothing was frozen", e.getMessage());
    }

    @Test
    void refusesToFreezeAPathThatIsNotMounted() throws Exception {
        mountFresh(null);
        Path nothing = dir.resolve("mnt/nothing");
        VolumeRefusedException e = assertThrows(VolumeRefusedException.class, () -> volumes.freeze(nothing, null, ""));
        assertEquals(nothing + " is not mounted; nothing was frozen", e.getMessage());
    }

    @Test
    void refusesALeaseAboveTheCap() throws Exception {
        mountFresh(null);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> volumes.freeze(mp, Duration.ofMinutes(10), ""));
        assertEquals("a freeze lease of 10m is longer than the maximum of 5m (kiln.volumes.freeze-max-lease)", e.getMessage());
    }

    @Test
    void refusesAMountKilnDidNotMakeAndAnOverlay() throws Exception {
        mountFresh(null);
        LoopDevice d = fx.loop(64 * MIB);
        sh("mkfs.ext4", "-q", d.device().toString());
        Path other = Files.createDirectories(dir.resolve("mnt/other"));
        sh("mount", d.device().toString(), other.toString());
        assertEquals(other + " is mounted (ext4 from " + d.device() + ") but not by Kiln; Kiln freezes only volumes it"
                + " mounted; nothing was frozen", assertThrows(VolumeRefusedException.class,
                () -> volumes.freeze(other, null, "")).getMessage());
        Path tree = dir.resolve("work/tree");
        Path lower = Files.createDirectories(dir.resolve("sources"));
        volumes.mount(new MountSpec(null, tree, null, false, false, false, false, "", null, lower, mp.resolve("upper")));
        assertEquals(tree + " is an overlay work tree, which cannot be frozen; freeze the volumes that hold " + lower
                + " and " + mp.resolve("upper") + " instead; nothing was frozen", assertThrows(VolumeRefusedException.class,
                () -> volumes.freeze(tree, null, "")).getMessage());
    }

    @Test
    void thawIsIdempotentAndAThawedVolumeTakesWritesAtOnce() throws Exception {
        mountFresh(null);
        volumes.freeze(mp, Duration.ofMinutes(1), "");
        Process w = writer("x");
        assertFalse(w.waitFor(300, TimeUnit.MILLISECONDS));
        assertTrue(volumes.thaw(mp));
        assertTrue(w.waitFor(5, TimeUnit.SECONDS));
        assertFalse(volumes.thaw(mp), "thawing a thawed volume does nothing");
        Path nothing = dir.resolve("mnt/nothing");
        assertEquals(nothing + " is not mounted", assertThrows(VolumeNotFoundException.class,
                () -> volumes.thaw(nothing)).getMessage());
    }

    @Test
    void freezingAgainExtendsTheLeaseAndARepeatedRequestIdChangesNothing() throws Exception {
        ManualTimer timer = new ManualTimer();
        mountFresh(timer);
        Instant first = volumes.freeze(mp, Duration.ofSeconds(10), "a");
        assertEquals(first, volumes.freeze(mp, Duration.ofSeconds(60), "a"), "same request id, same answer");
        assertEquals(1, timer.tasks.size());
        Instant extended = volumes.freeze(mp, Duration.ofSeconds(20), "b");
        assertTrue(extended.isAfter(first));
        assertEquals(2, timer.tasks.size());
        assertTrue(timer.tasks.get(0).cancelled()[0], "the first lease was replaced");
        timer.fire(0); // a late first timer must not thaw the extended freeze
        Process w = writer("y");
        assertFalse(w.waitFor(300, TimeUnit.MILLISECONDS), "still frozen");
        timer.fire(1);
        assertTrue(w.waitFor(5, TimeUnit.SECONDS), "thawed when the extended lease ended");
    }

    @Test
    void unmountRefusesAFrozenVolume() throws Exception {
        mountFresh(null);
        Instant thawBy = volumes.freeze(mp, Duration.ofMinutes(1), "");
        VolumeRefusedException e = assertThrows(VolumeRefusedException.class, () -> volumes.unmount(mp, null));
        assertEquals(mp + " is frozen for a snapshot until " + thawBy + "; thaw it first (kiln thaw " + mp
                + "); it stays mounted", e.getMessage());
        volumes.thaw(mp);
    }

    @Test
    void aRestartedAgentThawsWhatItsPredecessorLeftFrozen() throws Exception {
        mountFresh(new ManualTimer()); // this lease never ends: the agent "crashes" while frozen
        volumes.freeze(mp, Duration.ofMinutes(1), "");
        VolumeService restarted = fx.service(Duration.ofSeconds(2), List.of());
        Process w = writer("z");
        assertFalse(w.waitFor(300, TimeUnit.MILLISECONDS));
        restarted.thawLeftovers();
        assertTrue(w.waitFor(5, TimeUnit.SECONDS));
    }
}
