package dev.kiln.e2e;

import dev.kiln.testkit.Prerequisites;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The local fleet cleans up after itself, as a user sees it: an ended instance leaves the fleet's
 * store and a record of how it ended ({@code kiln ls --all}, the messages of terminate, status and
 * logs), its volumes are deleted only when their data is safe (docs/volumes.md), and
 * {@code kiln prune} clears what crashes left. Instances are real kiln-agent processes.
 */
class LocalFleetCleanupTest {

    @TempDir
    Path dir;

    Kiln kiln;
    Path fleet;

    @BeforeEach
    void setUp() throws Exception {
        Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwxr-xr-x")); // the build user walks in
        kiln = new Kiln(dir.resolve("home"));
        assertEquals(0, kiln.run("init").exitCode());
        fleet = dir.resolve("home/.local/state/kiln/fleet");
    }

    @AfterEach
    void tearDown() {
        Matcher m = Pattern.compile("\"id\": \"(local-[0-9a-f]+)\"").matcher(kiln.run("ls", "-o", "json").out());
        while (m.find()) {
            kiln.run("terminate", m.group(1), "--force");
        }
    }

    static String launched(Kiln.Run run) {
        assertEquals(0, run.exitCode(), run.toString());
        return run.out().lines().skip(1).findFirst().orElseThrow().split("\\s+")[0];
    }

    static String property(Path file, String key) throws Exception {
        java.util.Properties p = new java.util.Properties();
        try (var r = Files.newBufferedReader(file)) {
            p.load(r);
        }
        return p.getProperty(key);
    }

    /** The id of an instance's volume of that role, from the fleet's record of the instance. */
    static String volumeOf(Path fleet, String instance, String role) throws Exception {
        Path props = fleet.resolve("instances/" + instance + "/instance.properties");
        for (int i = 0; property(props, "volume." + i + ".id") != null; i++) {
            if (role.equals(property(props, "volume." + i + ".role"))) {
                return property(props, "volume." + i + ".id");
            }
        }
        throw new AssertionError("no " + role + " volume on " + instance);
    }

    /** The volume ids of an instance, by role. */
    java.util.Map<String, String> volumes(String id) throws Exception {
        Path props = fleet.resolve("instances/" + id + "/instance.properties");
        java.util.Map<String, String> out = new java.util.TreeMap<>();
        for (int i = 0; property(props, "volume." + i + ".id") != null; i++) {
            out.put(property(props, "volume." + i + ".role"), property(props, "volume." + i + ".id"));
        }
        return out;
    }

    @Test
    void anEndedInstanceLeavesARecordAndOnlyVolumesWhoseDataIsSafeGo() throws Exception {
        Kiln dirs = kiln.env("KILN_LOCAL_VOLUMES", "dirs");
        String a = launched(dirs.run("launch", "--volume", "data:1", "--volume", "cache:1", "--volume", "scratch:1",
                "--label", "box=dev"));
        java.util.Map<String, String> vols = volumes(a);
        Path data = fleet.resolve("volumes/" + vols.get("data") + "/data");
        Files.createDirectories(data.resolve("job"));
        Files.writeString(data.resolve("job/kept.txt"), "in the snapshot\n");
        Files.setPosixFilePermissions(data.resolve("job"), PosixFilePermissions.fromString("rwxr-xr-x"));
        Kiln.Run started = dirs.run("build", "--agent", a, "--detach", "job", "--", "sh", "-c", "echo hello from the build");
        assertEquals(0, started.exitCode(), started.toString());
        String build = started.out().strip();
        assertEquals(0, dirs.run("logs", "-f", build, "--agent", a).exitCode());
        Kiln.Run snap = dirs.run("snapshot", a, "data");
        assertEquals(0, snap.exitCode(), snap.toString());
        String snapshot = snap.out().lines().skip(1).findFirst().orElseThrow().split("\\s+")[0];
        Path scratch = fleet.resolve("volumes/" + vols.get("scratch"));
        Files.writeString(scratch.resolve("data/notes.txt"), "written, never snapshotted\n");

        Kiln.Run term = dirs.run("terminate", a);
        assertEquals(0, term.exitCode(), term.toString());
        assertEquals(a + " terminated\n", term.out());
        assertTrue(term.err().contains(vols.get("data") + " (data): deleted: all of it is in " + snapshot
                + ", taken after its last write"), term.err());
        assertTrue(term.err().contains(vols.get("cache") + " (cache): deleted: created blank and never written"), term.err());
        assertTrue(term.err().contains(vols.get("scratch") + " (scratch): kept in " + scratch
                + ": unsaved: written, and no snapshot of it exists"), term.err());
        assertFalse(Files.exists(fleet.resolve("instances/" + a)), "the instance left the store");
        assertFalse(Files.exists(fleet.resolve("volumes/" + vols.get("data"))));
        assertFalse(Files.exists(fleet.resolve("volumes/" + vols.get("cache"))));
        assertEquals("written, never snapshotted\n", Files.readString(scratch.resolve("data/notes.txt")));
        assertEquals("available", property(scratch.resolve("volume.properties"), "state"));
        assertTrue(Files.isRegularFile(fleet.resolve("snapshots/" + snapshot + "/data/job/kept.txt")));

        assertFalse(dirs.run("ls").out().contains(a));
        Kiln.Run all = dirs.run("ls", "--all");
        assertEquals(0, all.exitCode(), all.toString());
        assertTrue(all.out().matches("(?s).*" + a + "\\s+worker\\s+box=dev\\s+terminated\\s+-\\s+.*"
                + "\\d{4}-\\d\\d-\\d\\dT\\S+Z terminated by user \\(kiln terminate\\).*"), all.out());

        // Everything about it now says that it is terminated, when, and how.
        String summary = a + " is terminated (ended ";
        Kiln.Run again = dirs.run("terminate", a);
        assertEquals(0, again.exitCode(), again.toString());
        assertTrue(again.err().contains(summary) && again.err().contains(", terminated by user (kiln terminate))"), again.err());
        Kiln.Run force = dirs.run("terminate", a, "--force");
        assertEquals(0, force.exitCode(), force.toString());
        assertFalse(force.err().contains("EC2"), force.err());
        Kiln.Run status = dirs.run("status", "--agent", a);
        assertEquals(6, status.exitCode(), status.toString());
        assertTrue(status.err().contains(summary), status.err());
        assertFalse(status.err().contains("kiln up --local"), status.err());

        // Its build's log is kept in its record for a while.
        Kiln.Run log = dirs.run("logs", build, "--agent", a);
        assertEquals(0, log.exitCode(), log.toString());
        assertEquals("hello from the build\n", log.out());
        assertTrue(log.err().contains(summary) && log.err().contains("this is the copy of its log that the fleet keeps until"),
                log.err());
        Kiln.Run missing = dirs.run("logs", "b-00000000", "--agent", a);
        assertEquals(6, missing.exitCode(), missing.toString());
        assertTrue(missing.err().contains("no log of b-00000000 was kept (its record keeps the logs of: agent, " + build + ")"),
                missing.err());

        // A restored volume that nothing wrote goes with its instance: its snapshot holds all of it.
        String b = launched(dirs.run("launch", "--volume", "data:" + snapshot));
        String restored = volumes(b).get("data");
        // An agent that does not answer (stopped): --force stops its process, with no word of EC2.
        long pid = Long.parseLong(Files.readString(fleet.resolve("instances/" + b + "/agent.pid")).strip());
        assertEquals(0, new ProcessBuilder("kill", "-STOP", Long.toString(pid)).inheritIO().start().waitFor());
        Kiln.Run forced = dirs.run("terminate", b, "--force");
        assertEquals(0, forced.exitCode(), forced.toString());
        assertEquals(b + " terminated\n", forced.out());
        assertFalse(forced.err().contains("EC2"), forced.err());
        assertTrue(forced.err().contains("stopping the agent process of " + b + " (--force: TERM, then KILL)"), forced.err());
        assertTrue(forced.err().contains(restored + " (data): deleted: never written; all of it is in " + snapshot), forced.err());
        Kiln.Run listed = dirs.run("ls", "--all");
        assertTrue(listed.out().matches("(?s).*" + b + "\\s+worker\\s+-\\s+terminated\\s+-\\s+.*"
                + "terminated by user with --force \\(its agent was stopped, no drain\\).*"), listed.out());
        try (Stream<Path> left = Files.list(fleet.resolve("instances"))) {
            assertEquals(List.of(), left.toList(), "no instance directory is left");
        }
    }

    @Test
    void pruneClearsWhatACrashLeftAndSaysWhatItKeeps() throws Exception {
        Kiln dirs = kiln.env("KILN_LOCAL_VOLUMES", "dirs");
        String c = launched(dirs.run("launch", "--volume", "data:1"));
        Path volume = fleet.resolve("volumes/" + volumes(c).get("data"));
        Files.writeString(volume.resolve("data/work.txt"), "unsaved work\n");
        long pid = Long.parseLong(Files.readString(fleet.resolve("instances/" + c + "/agent.pid")).strip());
        Process kill = new ProcessBuilder("kill", "-KILL", Long.toString(pid)).inheritIO().start();
        assertEquals(0, kill.waitFor());
        assertTrue(ProcessHandle.of(pid).map(h -> {
            try {
                h.onExit().get(30, TimeUnit.SECONDS);
            } catch (Exception e) {
                return false;
            }
            return true;
        }).orElse(true));
        // A launch killed before it wrote its instance.properties: a directory with only its launcher's (dead) pid.
        Process dead = new ProcessBuilder("true").start();
        dead.waitFor();
        Path half = Files.createDirectories(fleet.resolve("instances/local-0000dead"));
        Files.writeString(half.resolve("launcher"), dead.pid() + " 2026-01-01T00:00:00Z\n");

        Kiln.Run dry = dirs.run("prune", "--dry-run");
        assertEquals(0, dry.exitCode(), dry.toString());
        assertTrue(dry.out().contains("would retire " + c + ": its agent is gone"), dry.out());
        assertTrue(dry.out().contains("would remove " + half + ": the directory of a launch that never finished"), dry.out());
        assertTrue(Files.isDirectory(fleet.resolve("instances/" + c)), "a dry run changes nothing");
        assertTrue(Files.isDirectory(half));

        Kiln.Run prune = dirs.run("prune");
        assertEquals(0, prune.exitCode(), prune.toString());
        assertTrue(prune.out().contains("retired " + c + " is terminated (ended "), prune.out());
        assertTrue(prune.out().contains("crashed (its agent exited without draining; see its agent.log)"), prune.out());
        assertTrue(prune.out().contains(volume.getFileName() + " (data): kept in " + volume
                + ": unsaved: written, and no snapshot of it exists"), prune.out());
        assertTrue(prune.out().contains("removed " + half + ": the directory of a launch that never finished"), prune.out());
        assertFalse(Files.exists(fleet.resolve("instances/" + c)));
        assertFalse(Files.exists(half));
        assertEquals("unsaved work\n", Files.readString(volume.resolve("data/work.txt")), "unsaved data is never deleted");

        Kiln.Run again = dirs.run("prune");
        assertEquals(0, again.exitCode(), again.toString());
        assertEquals(volume.getFileName() + " (data): kept in " + volume + ": unsaved: written, and no snapshot of it exists;"
                + " once you no longer need it: kiln volume rm " + volume.getFileName() + "\n", again.out(), "only the kept volume is named again");
        assertTrue(dirs.run("ls", "--all").out().contains("crashed"));
    }

    @Test
    void volumesStatusAndPruneOnLoopDevicesTouchOnlyTheInstancesOwn() throws Exception {
        Prerequisites.requireRoot("loop devices and mounts");
        // Another user's loop device on the same host.
        Path foreign = dir.resolve("someone-elses.img");
        try (var raf = new java.io.RandomAccessFile(foreign.toFile(), "rw")) {
            raf.setLength(64L << 20);
        }
        String other = run("losetup", "--find", "--show", foreign.toString()).strip();
        try {
            String a = launched(kiln.run("launch", "--volume", "data:1"));
            String vol = volumes(a).get("data");
            Kiln.Run volumes = kiln.run("volumes", "--agent", a);
            assertEquals(0, volumes.exitCode(), volumes.toString());
            assertEquals(2, volumes.out().lines().count(), "a header and its one volume:\n" + volumes.out());
            assertTrue(volumes.out().matches("(?s).*/dev/loop\\d+\\s+" + vol + "\\s+1G\\s+ext4\\s+\\S+/instances/" + a
                    + "/mnt/data\\s+mounted.*"), volumes.out());
            assertFalse(volumes.out().contains(other + " "), volumes.out());

            Kiln.Run status = kiln.run("status", "--agent", a);
            assertEquals(0, status.exitCode(), status.toString());
            assertTrue(status.out().matches("(?s).*\ninstance\\s+" + a + "\n.*"), status.out());

            // A crash between losetup and the agent: an image of the fleet's with a loop device nobody holds.
            Path orphan = Files.createDirectories(fleet.resolve("volumes/vol-local-0000dead"));
            try (var raf = new java.io.RandomAccessFile(orphan.resolve("volume.img").toFile(), "rw")) {
                raf.setLength(64L << 20);
            }
            String stale = run("losetup", "--find", "--show", orphan.resolve("volume.img").toString()).strip();
            Kiln.Run prune = kiln.run("prune");
            assertEquals(0, prune.exitCode(), prune.toString());
            assertTrue(prune.out().contains("detached " + stale + " (over " + orphan.resolve("volume.img")
                    + "): no running instance held it"), prune.out());
            assertTrue(prune.out().contains("vol-local-0000dead: kept in " + orphan + ": unsaved: its history is unknown"),
                    prune.out());
            assertFalse(prune.out().contains(other + " "), "another's loop device is never named: " + prune.out());
            assertTrue(run("losetup", "-a").contains(other + ":"), "another's loop device is never detached");
            assertFalse(run("losetup", "-a").contains(stale + ":"));
            assertTrue(Files.isRegularFile(orphan.resolve("volume.img")));
            assertEquals(0, kiln.run("volumes", "--agent", a).exitCode(), "its own volume is untouched by prune");
            assertTrue(kiln.run("volumes", "--agent", a).out().contains(vol));
        } finally {
            run("losetup", "-d", other);
        }
    }

    @Test
    void onLoopDevicesAVolumeGoesOnlyWhenItsFilesAreProvablyInASnapshot() throws Exception {
        Prerequisites.requireRoot("loop devices and mounts");
        Prerequisites.requireCommand("dumpe2fs", "apt-get install e2fsprogs");
        String a = launched(kiln.run("launch", "--volume", "data:1", "--volume", "scratch:1"));
        java.util.Map<String, String> vols = volumes(a);
        Path mnt = fleet.resolve("instances/" + a + "/mnt");
        Files.writeString(mnt.resolve("data/kept.txt"), "in the snapshot\n");
        Files.writeString(mnt.resolve("scratch/notes.txt"), "first draft\n");
        String data = snapshot(a, "data");
        String scratch = snapshot(a, "scratch");
        // Written after its snapshot: the snapshot lacks this, so the volume stays.
        Files.writeString(mnt.resolve("scratch/notes.txt"), "second draft\n");

        Kiln.Run term = kiln.run("terminate", a);
        assertEquals(0, term.exitCode(), term.toString());
        // Unmounting wrote its superblock and journal, nothing else: all of it is in the snapshot.
        assertTrue(term.err().contains(vols.get("data") + " (data): deleted: all of it is in " + data
                + " (since then only the mounts' own superblock, journal and group-descriptor writes)"), term.err());
        assertFalse(Files.exists(fleet.resolve("volumes/" + vols.get("data"))));
        Path kept = fleet.resolve("volumes/" + vols.get("scratch"));
        assertTrue(term.err().contains(vols.get("scratch") + " (scratch): kept in " + kept
                + ": unsaved: written after its last snapshot (" + scratch + ")"), term.err());
        assertTrue(Files.isRegularFile(kept.resolve("volume.img")));

        // A restored sources volume is mounted read-only: only its check and mount write it, so it goes.
        String b = launched(kiln.run("launch", "--volume", "sources:" + data));
        String restored = volumes(b).get("sources");
        assertEquals("in the snapshot\n", Files.readString(fleet.resolve("instances/" + b + "/mnt/sources/kept.txt")));
        Kiln.Run ended = kiln.run("terminate", b);
        assertEquals(0, ended.exitCode(), ended.toString());
        assertTrue(ended.err().contains(restored + " (sources): deleted: all of it is in " + data
                + " (since then only the mounts' own superblock, journal and group-descriptor writes)"), ended.err());
        assertFalse(Files.exists(fleet.resolve("volumes/" + restored)));

        Kiln.Run dry = kiln.run("prune", "--dry-run");
        assertEquals(0, dry.exitCode(), dry.toString());
        assertFalse(dry.out().contains(vols.get("data")) || dry.out().contains(restored), dry.out());
    }

    /** Snapshots one of an instance's volumes; its id. */
    String snapshot(String instance, String role) {
        Kiln.Run snap = kiln.run("snapshot", instance, role);
        assertEquals(0, snap.exitCode(), snap.toString());
        return snap.out().lines().skip(1).findFirst().orElseThrow().split("\\s+")[0];
    }

    static String run(String... argv) throws Exception {
        Process p = new ProcessBuilder(argv).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes());
        assertTrue(p.waitFor(30, TimeUnit.SECONDS));
        return out;
    }
}
