package dev.kiln.agent.schedule;

import dev.kiln.agent.build.BuildUser;
import dev.kiln.agent.build.OsProcessLauncher;
import dev.kiln.agent.volume.KilnMount;
import dev.kiln.agent.volume.TestVolumes;
import dev.kiln.snapshot.LocalSnapshotFormat;
import dev.kiln.testkit.Prerequisites;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.Reader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Properties;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Scheduled snapshots on real volumes (a loop device with ext4, frozen with fsfreeze) into a
 * local fleet's snapshot store, with pre and post commands run as the real build user.
 */
class ScheduleRunnerTest {

    static final long MIB = 1L << 20;
    static final String VOLUME = "vol-local-0000aaaa";

    @TempDir
    Path dir;

    TestVolumes volumes;
    Path store;
    Path mp;
    BuildUser kiln;
    ScheduleRunner runner;

    @BeforeEach
    void setUp() throws Exception {
        Prerequisites.requireRoot("loop devices, mount and switching to the build user");
        Prerequisites.require("the unprivileged build user 'kiln'", BuildUser.lookup("kiln").isPresent(),
                "useradd --system --create-home kiln (bash .ci/install does it)");
        kiln = BuildUser.resolve("kiln");
        volumes = new TestVolumes(dir.resolve("t"));
        Path fleet = dir.resolve("fleet");
        store = Files.createDirectories(fleet.resolve("snapshots"));
        Path vdir = Files.createDirectories(fleet.resolve("volumes").resolve(VOLUME));
        Files.writeString(vdir.resolve("volume.properties"), "role=data\ncollection=default\nkind=image\nsize-gib=0\n");
        Path idir = Files.createDirectories(fleet.resolve("instances/local-test"));
        Files.writeString(idir.resolve("instance.properties"), "role=server\nlabel.app=notes\n");
        // Under the fixture's directory (which it unmounts at the end), on a path the build user can walk.
        mp = dir.resolve("t/inst/mnt/data");
        Files.createDirectories(mp);
        for (Path p = mp; p.startsWith(dir); p = p.getParent()) {
            Files.setPosixFilePermissions(p, java.nio.file.attribute.PosixFilePermissions.fromString("rwxr-xr-x"));
        }
        volumes.mountNewImage(vdir.resolve("volume.img"), 64 * MIB, mp, kiln.uid() + ":" + kiln.gid(), null);
    }

    @AfterEach
    void tearDown() throws Exception {
        if (runner != null) {
            runner.close();
        }
        if (volumes != null) {
            volumes.close();
        }
    }

    ScheduleRunner runner(SnapshotBackend backend, Duration freezeLease, Duration retryBase) {
        HookCommand hooks = new HookCommand(new OsProcessLauncher(), () -> kiln, Duration.ofSeconds(30));
        runner = new ScheduleRunner(new ScheduleStore(dir.resolve("state")), volumes.service(), backend, "", hooks,
                Clock.systemUTC(), freezeLease, Duration.ZERO, retryBase);
        return runner;
    }

    LocalSnapshotBackend local() {
        return new LocalSnapshotBackend(store, volumes.sysfsRoot(), "local-test");
    }

    static ScheduleSpec spec(Duration every, int keep, String pre, String post) {
        return new ScheduleSpec("data", every, "", keep, pre, post);
    }

    List<Path> snapshots() throws IOException {
        try (Stream<Path> s = Files.list(store)) {
            return s.filter(p -> p.getFileName().toString().startsWith("snap-local-")).sorted().toList();
        }
    }

    static Properties props(Path snapshot) throws IOException {
        Properties p = new Properties();
        try (Reader r = Files.newBufferedReader(snapshot.resolve(LocalSnapshotFormat.FILE), StandardCharsets.UTF_8)) {
            p.load(r);
        }
        return p;
    }

    @Test
    void preAndPostRunAsTheBuildUserAroundASnapshotInTheFleetsFormat() throws Exception {
        Files.writeString(mp.resolve("notes.txt"), "committed before the snapshot\n");
        runner(local(), Duration.ofSeconds(30), Duration.ofSeconds(1)).set(spec(Duration.ofHours(24), 0,
                "id -u > \"$KILN_MOUNT_POINT/pre-uid\"", "id -u > \"$KILN_MOUNT_POINT/post-uid\""));

        ScheduleState s = runner.runNow("data");

        assertTrue(s.lastOk(), s.lastResult());
        assertEquals(Integer.toString(kiln.uid()), Files.readString(mp.resolve("pre-uid")).strip());
        assertEquals(Integer.toString(kiln.uid()), Files.readString(mp.resolve("post-uid")).strip());
        List<Path> taken = snapshots();
        assertEquals(1, taken.size());
        assertEquals(s.lastSnapshot(), taken.get(0).getFileName().toString());
        Properties p = props(taken.get(0));
        assertEquals("true", p.getProperty("managed"));
        assertEquals(s.lastSnapshot(), p.getProperty("id"));
        assertEquals("data", p.getProperty("volume-role"));
        assertEquals("default", p.getProperty("collection"));
        assertEquals(VOLUME, p.getProperty("source-volume"));
        assertEquals("local-test", p.getProperty("source-instance"));
        assertEquals("server", p.getProperty("role"));
        assertEquals("notes", p.getProperty("label.app"));
        assertTrue(p.getProperty("volume-stamp", "").startsWith("image:"), "nothing was written during the frozen copy");
        // The copy is a clean filesystem holding what was written before the snapshot (and the pre command's file).
        Path copy = taken.get(0).resolve(LocalSnapshotFormat.IMAGE);
        assertEquals(0, new ProcessBuilder("e2fsck", "-n", "-f", copy.toString()).redirectErrorStream(true).start().waitFor());
        Process cat = new ProcessBuilder("debugfs", "-R", "cat /notes.txt", copy.toString()).start();
        assertEquals("committed before the snapshot\n", new String(cat.getInputStream().readAllBytes(), StandardCharsets.UTF_8));
        assertTrue(volumes.service().frozenUntil(mp).isEmpty(), "thawed after the run");
        Files.writeString(mp.resolve("after.txt"), "writes go on"); // would block if still frozen
    }

    @Test
    void retentionKeepsTheNewestOfKilnsSnapshotsAndNeverOneKilnDidNotMake() throws Exception {
        Path foreign = Files.createDirectories(store.resolve("snap-local-f0f0f0f0"));
        Files.writeString(foreign.resolve(LocalSnapshotFormat.FILE), "volume-role=data\ncollection=default\nstarted="
                + Instant.now().minusSeconds(3600) + "\n");
        Path otherCollection = Files.createDirectories(store.resolve("snap-local-0c0c0c0c"));
        Files.writeString(otherCollection.resolve(LocalSnapshotFormat.FILE), "volume-role=data\ncollection=other\nstarted="
                + Instant.now().minusSeconds(3600) + "\nmanaged=true\nid=snap-local-0c0c0c0c\n");
        runner(local(), Duration.ofSeconds(30), Duration.ofSeconds(1)).set(spec(Duration.ofHours(24), 2, "", ""));

        List<String> made = new java.util.ArrayList<>();
        for (int i = 0; i < 4; i++) {
            ScheduleState s = runner.runNow("data");
            assertTrue(s.lastOk(), s.lastResult());
            made.add(s.lastSnapshot());
        }

        List<String> left = snapshots().stream().map(p -> p.getFileName().toString()).toList();
        assertEquals(List.of(made.get(2), made.get(3), "snap-local-0c0c0c0c", "snap-local-f0f0f0f0").stream().sorted().toList(),
                left, "the newest 2 of Kiln's, the other collection's and the foreign one");
        assertTrue(runner.list().get(0).lastResult().contains("deleted " + made.get(1)), runner.list().get(0).lastResult());
    }

    /** Retention deletes only what schedules took of this volume: never another instance's snapshot, nor one taken by hand. */
    @Test
    void retentionLeavesOtherInstancesAndManualSnapshotsAlone() throws Exception {
        Path otherInstance = Files.createDirectories(store.resolve("snap-local-0a0a0a0a"));
        Files.writeString(otherInstance.resolve(LocalSnapshotFormat.FILE), "volume-role=data\ncollection=default\nstarted="
                + Instant.now().minusSeconds(3600) + "\nmanaged=true\nid=snap-local-0a0a0a0a\nsource-instance=local-other\n"
                + "source-volume=vol-local-0000bbbb\n");
        Path manual = Files.createDirectories(store.resolve("snap-local-0b0b0b0b"));
        Files.writeString(manual.resolve(LocalSnapshotFormat.FILE), "volume-role=data\ncollection=default\nstarted="
                + Instant.now().minusSeconds(7200) + "\nmanaged=true\nid=snap-local-0b0b0b0b\nsource-instance=local-test\n"
                + "source-volume=" + VOLUME + "\n");
        runner(local(), Duration.ofSeconds(30), Duration.ofSeconds(1)).set(spec(Duration.ofHours(24), 1, "", ""));

        ScheduleState s = runner.runNow("data");

        assertTrue(s.lastOk(), s.lastResult());
        List<String> left = snapshots().stream().map(p -> p.getFileName().toString()).toList();
        assertTrue(left.contains("snap-local-0a0a0a0a"), "another instance's snapshot was deleted: " + s.lastResult());
        assertTrue(left.contains("snap-local-0b0b0b0b"), "a manual kiln snapshot was deleted: " + s.lastResult());
    }

    @Test
    void aRunMissedWhileTheAgentWasDownRunsOnceSoonAfterStartNotOncePerMissedPeriod() throws Exception {
        Instant now = Instant.now();
        ScheduleSpec spec = spec(Duration.ofHours(1), 0, "", "");
        // Set ten hours ago; its last run was due five hours ago: five periods missed.
        new ScheduleStore(dir.resolve("state")).save(new ScheduleStore.Contents(List.of(new ScheduleState(spec,
                now.minus(Duration.ofHours(10)), now.minus(Duration.ofHours(5)), null, false, "", "", 0)), ""));
        runner(local(), Duration.ofSeconds(30), Duration.ofSeconds(1)).start();

        ScheduleState s = awaitRun(runner);

        assertTrue(s.lastOk(), s.lastResult());
        assertTrue(s.nextRun().isAfter(Instant.now()), "the next run is a regular one, in the future: " + s.nextRun());
        assertTrue(Duration.between(Instant.now(), s.nextRun()).compareTo(Duration.ofHours(1)) <= 0);
        runner.drain(Duration.ofMinutes(1));
        assertEquals(1, snapshots().size(), "one catch-up run, not one per missed period");
    }

    @Test
    void aFailingRunIsRetriedWithBackoffAndReportedUntilOneSucceeds() throws Exception {
        runner(local(), Duration.ofSeconds(30), Duration.ofSeconds(10))
                .set(spec(Duration.ofHours(1), 0, "test -e \"$KILN_MOUNT_POINT/ready\"", ""));

        ScheduleState first = runner.runNow("data");
        assertFalse(first.lastOk());
        assertEquals(1, first.failures());
        assertTrue(first.lastResult().contains("the pre command exited with status 1"), first.lastResult());
        assertTrue(first.lastResult().contains("no snapshot was taken"), first.lastResult());
        Duration wait1 = Duration.between(first.lastRun(), first.nextRun());
        assertTrue(wait1.compareTo(Duration.ofSeconds(10)) >= 0 && wait1.compareTo(Duration.ofMinutes(5)) < 0, wait1.toString());
        assertEquals(1, runner.problems().size());
        assertTrue(runner.problems().get(0).startsWith("snapshot schedule of data is failing (1 failed run in a row)"),
                runner.problems().get(0));

        ScheduleState second = runner.runNow("data");
        assertEquals(2, second.failures());
        Duration wait2 = Duration.between(second.lastRun(), second.nextRun());
        assertTrue(wait2.compareTo(Duration.ofSeconds(20)) >= 0, "the wait doubles: " + wait2);
        assertTrue(runner.problems().get(0).contains("2 failed runs in a row"), runner.problems().get(0));
        assertTrue(snapshots().isEmpty());

        Files.writeString(mp.resolve("ready"), "");
        ScheduleState third = runner.runNow("data");
        assertTrue(third.lastOk(), third.lastResult());
        assertEquals(0, third.failures());
        assertEquals(List.of(), runner.problems());
        assertEquals(1, snapshots().size());
    }

    @Test
    void theFreezeEndsWithItsLeaseWhenTheSnapshotCallHangsAndThatSnapshotDoesNotCount() throws Exception {
        // A snapshot call that does not return before the lease ends cannot be shown with a real
        // backend on demand; this one holds the real copy back until the agent has thawed by itself.
        LocalSnapshotBackend real = local();
        SnapshotBackend slow = new SnapshotBackend() {
            @Override
            public Target target(String role, KilnMount mount) throws IOException {
                return real.target(role, mount);
            }

            @Override
            public Taken create(Target target) throws IOException {
                Taken t = real.create(target);
                while (volumes.service().frozenUntil(mp).isPresent()) {
                    try {
                        Thread.sleep(50);
                    } catch (InterruptedException e) {
                        throw new IOException(e);
                    }
                }
                return t;
            }

            @Override
            public Taken finish(Target target, Taken taken) throws IOException {
                return real.finish(target, taken);
            }

            @Override
            public void abandon(Target target, Taken taken) {
                real.abandon(target, taken);
            }

            @Override
            public List<Taken> list(Target target) throws IOException {
                return real.list(target);
            }

            @Override
            public void delete(Target target, Taken snapshot) throws IOException {
                real.delete(target, snapshot);
            }

            @Override
            public String describe() {
                return "slow";
            }
        };
        runner(slow, Duration.ofSeconds(1), Duration.ofSeconds(1)).set(spec(Duration.ofHours(1), 0, "", ""));

        ScheduleState s = runner.runNow("data");

        assertFalse(s.lastOk());
        assertTrue(s.lastResult().contains("after the freeze lease of 1s had ended"), s.lastResult());
        try (Stream<Path> left = Files.list(store)) {
            assertEquals(List.of(), left.toList(), "the late snapshot was removed");
        }
        Files.writeString(mp.resolve("after.txt"), "writes go on");
    }

    static ScheduleState awaitRun(ScheduleRunner runner) throws InterruptedException {
        // A generous bound against a hang; the assertions are about what happened, not how fast.
        Instant giveUp = Instant.now().plus(Duration.ofMinutes(2));
        while (Instant.now().isBefore(giveUp)) {
            ScheduleState s = runner.list().get(0);
            if (s.lastRun() != null) {
                return s;
            }
            Thread.sleep(50);
        }
        throw new AssertionError("no run within 2 minutes: " + runner.list());
    }
}
