package dev.kiln.e2e;

import dev.kiln.testkit.Prerequisites;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The fleet commands on the local provider (the default), as a user runs them: instances are
 * real kiln-agent processes, volumes loop-device images (as root) or directories
 * (KILN_LOCAL_VOLUMES=dirs, what a user without root gets), snapshots copies. The whole
 * pipeline on loop devices runs in {@link QuickstartTest}.
 */
class LocalProviderTest {

    @TempDir
    Path dir;

    Kiln kiln;

    @BeforeEach
    void setUp() throws Exception {
        Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwxr-xr-x")); // the build user walks in
        kiln = new Kiln(dir.resolve("home"));
        assertEquals(0, kiln.run("init").exitCode());
    }

    @AfterEach
    void tearDown() {
        Matcher m = Pattern.compile("\"id\": \"(local-[0-9a-f]+)\"").matcher(kiln.run("ls", "-o", "json").out());
        while (m.find()) {
            kiln.run("terminate", m.group(1), "--force");
        }
    }

    String launch(Kiln k, String... args) {
        Kiln.Run run = k.run(Stream.concat(Stream.of("launch"), Stream.of(args)).toArray(String[]::new));
        assertEquals(0, run.exitCode(), run.toString());
        return run.out().lines().skip(1).findFirst().orElseThrow().split("\\s+")[0];
    }

    static List<String> loopsOf(Path backing) throws Exception {
        Process p = new ProcessBuilder("losetup", "-a").redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes());
        p.waitFor(10, TimeUnit.SECONDS);
        return out.lines().filter(l -> l.contains(backing.toString())).toList();
    }

    @Test
    void launchListSnapshotPruneRestoreAndTerminateOnLoopDevices() throws Exception {
        Prerequisites.requireRoot("loop devices and mounts");
        String a = launch(kiln, "--volume", "data:1", "--ttl", "30m", "--label", "box=dev");
        Path fleet = dir.resolve("home/.local/state/kiln/fleet");
        assertEquals(1, loopsOf(fleet).size(), "one loop device over the volume's image");

        Kiln.Run ls = kiln.run("ls");
        assertTrue(ls.out().matches("(?s).*" + a + "\\s+worker\\s+box=dev\\s+running\\s+ready\\s+-\\s+29m\\d\\ds\\s+127\\.0\\.0\\.1:\\d+.*"),
                ls.out());
        Kiln.Run volumes = kiln.run("volumes", "--agent", a);
        assertTrue(volumes.out().matches("(?s).*/dev/loop\\d+\\s+vol-local-[0-9a-f]{8}\\s+1G\\s+ext4\\s+\\S+/instances/" + a + "/mnt/data\\s+mounted.*"),
                volumes.toString());

        Kiln.Run capped = kiln.run("launch", "--max", "1");
        assertEquals(5, capped.exitCode(), capped.toString());
        assertTrue(capped.err().contains("the fleet cap is 1 and 1 managed instances are pending or running:\n  " + a
                + " worker running {box=dev}"), capped.err());
        Kiln.Run ec2Only = kiln.run("launch", "--ami", "ami-12345678", "--subnet", "subnet-1");
        assertEquals(2, ec2Only.exitCode(), ec2Only.toString());
        assertTrue(ec2Only.err().contains("--ami, --subnet are for the ec2 provider; this launch is on the local provider"),
                ec2Only.err());

        List<String> ids = new java.util.ArrayList<>();
        for (int n = 0; n < 3; n++) {
            Kiln.Run snap = kiln.run("snapshot", a, "data", "--keep", "2");
            assertEquals(0, snap.exitCode(), snap.toString());
            assertTrue(snap.err().contains("kiln: froze " + fleet.resolve("instances/" + a + "/mnt/data")), snap.err());
            assertTrue(snap.err().contains("kiln: thawed "), snap.err());
            ids.add(snap.out().lines().skip(1).findFirst().orElseThrow().split("\\s+")[0]);
        }
        Kiln.Run list = kiln.run("snapshots", "--role", "data");
        assertEquals(List.of(ids.get(2), ids.get(1)), list.out().lines().skip(1).map(l -> l.split("\\s+")[0]).toList(),
                "the newest two, newest first; the oldest was pruned");
        assertFalse(Files.exists(fleet.resolve("snapshots").resolve(ids.get(0))));

        Kiln.Run term = kiln.run("terminate", a);
        assertEquals(0, term.exitCode(), term.toString());
        assertEquals(a + " terminated\n", term.out());
        assertEquals(List.of(), loopsOf(fleet.resolve("volumes")), "its loop device was released");
        assertFalse(kiln.run("ls").out().contains(a));

        String b = launch(kiln, "--volume", "data:" + ids.get(1), "--ttl", "10m");
        Kiln.Run restored = kiln.run("volumes", "--agent", b);
        assertTrue(restored.out().matches("(?s).*/mnt/data\\s+mounted.*"), restored.toString());
        Kiln.Run missing = kiln.run("launch", "--volume", "cache:latest");
        assertEquals(6, missing.exitCode(), missing.toString());
        assertTrue(missing.err().contains("no Kiln snapshot of volume role 'cache' yet"), missing.err());

        // The controller-side backstop: an instance whose record is past its lease (and grace) is
        // kept while its agent answers with a later deadline, and the record follows that deadline.
        Path props = fleet.resolve("instances/" + b + "/instance.properties");
        String past = Instant.now().minus(Duration.ofHours(1)).toString();
        Files.writeString(props, Files.readString(props).replaceAll("expires-at=.*", "expires-at="
                + past.replace(":", "\\\\:")));
        Kiln.Run kept = kiln.run("reap", "--grace", "30m");
        assertEquals(0, kept.exitCode(), kept.toString());
        assertTrue(kept.out().matches("(?s).*" + b + "\\s+worker\\s+\\S+\\s+kept \\(its agent's deadline is .*"), kept.out());
        assertFalse(Files.readString(props).contains(past.replace(":", "\\:")), Files.readString(props));
        // An agent that hangs (SIGSTOP) does not answer: the record alone decides, and reap ends it.
        Files.writeString(props, Files.readString(props).replaceAll("expires-at=.*", "expires-at="
                + past.replace(":", "\\\\:")));
        long pid = Long.parseLong(Files.readString(fleet.resolve("instances/" + b + "/agent.pid")).trim());
        signal("STOP", pid);
        java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream();
        java.io.ByteArrayOutputStream err = new java.io.ByteArrayOutputStream();
        Kiln.Run[] result = new Kiln.Run[1];
        Thread reaping = new Thread(() -> result[0] = kiln.run(out, err, "reap", "--grace", "30m", "--timeout", "2s"), "kiln-reap");
        reaping.start();
        try {
            long end = System.nanoTime() + Duration.ofSeconds(60).toNanos();
            while (!err.toString().contains("its agent does not answer") && reaping.isAlive() && System.nanoTime() < end) {
                Thread.sleep(50);
            }
        } finally {
            signal("CONT", pid); // the TERM that reap sends is then handled at once
        }
        reaping.join(Duration.ofSeconds(90).toMillis());
        Kiln.Run reap = result[0];
        assertEquals(0, reap.exitCode(), reap.toString());
        assertTrue(reap.out().matches("(?s).*" + b + "\\s+worker\\s+\\S+\\s+terminated \\(agent unreachable\\).*"), reap.out());
        assertTrue(kiln.run("ls", "-o", "json").out().strip().equals("[]"), "nothing left running");
        assertEquals(List.of(), loopsOf(fleet.resolve("volumes")));
    }

    @Test
    void snapshotKeepsASubSecondFreezeLeaseAndHonoursItsRequestTimeout() throws Exception {
        Prerequisites.requireRoot("loop devices and freezing a mounted volume");
        String a = launch(kiln, "--volume", "data:1");
        Path fleet = dir.resolve("home/.local/state/kiln/fleet");

        // The agent gets the lease as given, not cut to whole seconds (500ms was 0s: the agent's default, 30s).
        Kiln.Run snap = kiln.run("snapshot", a, "data", "--freeze-lease", "500ms");
        Instant returned = Instant.now();
        assertEquals(0, snap.exitCode(), snap.toString());
        Matcher thawBy = Pattern.compile("kiln: froze \\S+/mnt/data on " + a + " \\(the agent thaws it by (\\S+) at the latest\\)")
                .matcher(snap.err());
        assertTrue(thawBy.find(), snap.err());
        Instant by = Instant.parse(thawBy.group(1));
        assertFalse(by.isAfter(returned.plusMillis(500)), "frozen at most 500ms from the freeze, which came before "
                + returned + ": " + by);
        Kiln.Run zero = kiln.run("snapshot", a, "data", "--freeze-lease", "0s");
        assertEquals(2, zero.exitCode(), zero.toString());
        assertTrue(zero.err().contains("--freeze-lease must be longer than 0, not '0s'"), zero.err());

        // An agent that accepts the connection and never answers: --timeout is the deadline of each request.
        long pid = Long.parseLong(Files.readString(fleet.resolve("instances/" + a + "/agent.pid")).strip());
        String endpoint = Files.readString(fleet.resolve("instances/" + a + "/endpoint")).strip();
        List<String> before;
        try (Stream<Path> s = Files.list(fleet.resolve("snapshots"))) {
            before = s.map(p -> p.getFileName().toString()).sorted().toList();
        }
        signal("STOP", pid);
        Kiln.Run stuck;
        try {
            stuck = kiln.run("snapshot", a, "data", "--timeout", "2s");
        } finally {
            signal("CONT", pid);
        }
        assertEquals(4, stuck.exitCode(), stuck.toString());
        assertTrue(stuck.err().contains("kiln: no answer from " + endpoint + " in 2s; "), stuck.err());
        assertFalse(stuck.err().contains("DEADLINE_EXCEEDED"), stuck.err());
        try (Stream<Path> s = Files.list(fleet.resolve("snapshots"))) {
            assertEquals(before, s.map(p -> p.getFileName().toString()).sorted().toList(), "nothing snapshotted unfrozen");
        }
    }

    static void signal(String name, long pid) throws Exception {
        Process kill = new ProcessBuilder("kill", "-" + name, Long.toString(pid)).inheritIO().start();
        assertEquals(0, kill.waitFor());
    }

    @Test
    void aLaunchThatFailsAfterAttachingALoopDeviceDetachesIt() throws Exception {
        Prerequisites.requireRoot("loop devices and a small tmpfs");
        // The fleet on a 64 MiB filesystem, so restoring a 40 MiB snapshot beside the first
        // volume's loop device runs out of space part-way through the launch.
        Path small = Files.createDirectories(dir.resolve("small"));
        Process mount = new ProcessBuilder("mount", "-t", "tmpfs", "-o", "size=64m,mode=0755", "kiln-test", small.toString())
                .inheritIO().start();
        assertEquals(0, mount.waitFor());
        try {
            Kiln k = new Kiln(small.resolve("home"));
            assertEquals(0, k.run("init").exitCode());
            Path snapshot = Files.createDirectories(small.resolve("home/.local/state/kiln/fleet/snapshots/snap-local-0ddba11d"));
            byte[] chunk = new byte[1 << 20];
            try (var out = Files.newOutputStream(snapshot.resolve("volume.img"))) {
                for (int n = 0; n < 40; n++) {
                    java.util.concurrent.ThreadLocalRandom.current().nextBytes(chunk); // no zeros for cp --sparse to skip
                    out.write(chunk);
                }
            }
            Kiln.Run run = k.run("launch", "--volume", "data:1", "--volume", "cache:snap-local-0ddba11d");
            assertEquals(1, run.exitCode(), run.toString());
            assertEquals(List.of(), loopsOf(small), "no loop device left on the failed launch's images");
            assertTrue(run.err().contains("No space left on device"), run.err());
            assertTrue(run.err().contains("its loop devices are detached"), run.err());
        } finally {
            for (String loop : loopsOf(small)) {
                new ProcessBuilder("losetup", "-d", loop.substring(0, loop.indexOf(':'))).inheritIO().start().waitFor();
            }
            new ProcessBuilder("umount", small.toString()).inheritIO().start().waitFor();
        }
    }

    static String property(Path file, String key) throws Exception {
        java.util.Properties p = new java.util.Properties();
        try (var r = Files.newBufferedReader(file)) {
            p.load(r);
        }
        return p.getProperty(key);
    }

    @Test
    void snapshotsWithoutKilnsMarkAreNeverPrunedNorPickedAsLatestButRestoreByTheirId() throws Exception {
        Kiln dirs = kiln.env("KILN_LOCAL_VOLUMES", "dirs");
        Path fleet = dir.resolve("home/.local/state/kiln/fleet");
        Path snaps = fleet.resolve("snapshots");
        String a = launch(dirs, "--volume", "data:1");
        Kiln.Run first = dirs.run("snapshot", a, "data");
        assertEquals(0, first.exitCode(), first.toString());
        String oldest = first.out().lines().skip(1).findFirst().orElseThrow().split("\\s+")[0];

        // A copy of Kiln's snapshot made by hand under another name: it is not Kiln's to delete.
        Path copy = snaps.resolve("snap-local-0badc0de");
        Process cp = new ProcessBuilder("cp", "-a", snaps.resolve(oldest).toString(), copy.toString()).inheritIO().start();
        assertEquals(0, cp.waitFor());
        // One in the format of a Kiln from before the mark, and the newest of all by its time.
        Path legacy = snaps.resolve("snap-local-01d0000d");
        Files.createDirectories(legacy.resolve("data"));
        Files.writeString(legacy.resolve("data/kept.txt"), "legacy\n");
        Files.writeString(legacy.resolve("snapshot.properties"), "volume-role=data\nsource-volume=vol-local-00000000\n"
                + "source-instance=local-00000000\nrole=worker\nbuild-id=\nstarted=" + Instant.now().plus(Duration.ofHours(1))
                + "\nsize-gib=1\n");

        String newest = null;
        for (int n = 0; n < 2; n++) {
            Kiln.Run snap = dirs.run("snapshot", a, "data", "--keep", "1");
            assertEquals(0, snap.exitCode(), snap.toString());
            assertTrue(snap.err().contains("kiln: not pruned: snap-local-01d0000d carries no Kiln mark"), snap.err());
            assertTrue(snap.err().contains("kiln: not pruned: snap-local-0badc0de carries no Kiln mark"), snap.err());
            newest = snap.out().lines().skip(1).findFirst().orElseThrow().split("\\s+")[0];
        }
        assertFalse(Files.exists(snaps.resolve(oldest)), "Kiln's older snapshot was pruned");
        assertTrue(Files.isDirectory(snaps.resolve(newest)));
        assertTrue(Files.isDirectory(copy.resolve("data")), "the hand-made copy is untouched");
        assertEquals("legacy\n", Files.readString(legacy.resolve("data/kept.txt")), "the unmarked snapshot is untouched");

        Kiln.Run list = dirs.run("snapshots", "--role", "data");
        assertEquals(0, list.exitCode(), list.toString());
        assertEquals(List.of("snap-local-01d0000d", newest, "snap-local-0badc0de"),
                list.out().lines().skip(1).map(l -> l.split("\\s+")[0]).toList(), list.toString());
        assertTrue(list.err().contains("kiln: snap-local-01d0000d carries no Kiln mark (made by hand, or by a Kiln from before"
                + " the mark): it can be restored by its id (data:snap-local-01d0000d), but Kiln never prunes it"), list.err());

        // latest is the newest marked snapshot, not the unmarked one that claims a later time.
        Kiln.Run latest = dirs.run("launch", "--volume", "data:latest");
        assertEquals(0, latest.exitCode(), latest.toString());
        String b = latest.out().lines().skip(1).findFirst().orElseThrow().split("\\s+")[0];
        String volume = property(fleet.resolve("instances/" + b + "/instance.properties"), "volume.0.id");
        assertEquals(newest, property(fleet.resolve("volumes/" + volume + "/volume.properties"), "from-snapshot"));
        // An unmarked snapshot from an earlier Kiln is still restored when named.
        String c = launch(dirs, "--volume", "data:snap-local-01d0000d");
        String restored = property(fleet.resolve("instances/" + c + "/instance.properties"), "volume.0.id");
        assertEquals("legacy\n", Files.readString(fleet.resolve("volumes/" + restored + "/data/kept.txt")));
    }

    @Test
    void retentionAndLatestStayInsideTheSnapshotsCollection() throws Exception {
        Kiln dirs = kiln.env("KILN_LOCAL_VOLUMES", "dirs");
        Path fleet = dir.resolve("home/.local/state/kiln/fleet");
        Path snaps = fleet.resolve("snapshots");
        String a = launch(dirs, "--volume", "data:1");
        Kiln.Run first = dirs.run("snapshot", a, "data");
        assertEquals(0, first.exitCode(), first.toString());
        String oldest = first.out().lines().skip(1).findFirst().orElseThrow().split("\\s+")[0];

        // Another collection's snapshot of the same role, Kiln's own and the newest of all by its time.
        Path photos = snaps.resolve("snap-local-0000b0b0");
        Files.createDirectories(photos.resolve("data"));
        Files.writeString(photos.resolve("data/which.txt"), "photos\n");
        Files.writeString(photos.resolve("snapshot.properties"), "volume-role=data\nsource-volume=vol-local-00000000\n"
                + "source-instance=local-00000000\nrole=worker\nbuild-id=\nstarted=" + Instant.now().plus(Duration.ofHours(1))
                + "\nsize-gib=1\nmanaged=true\nid=snap-local-0000b0b0\ncollection=photos\n");

        Kiln.Run keep = dirs.run("snapshot", a, "data", "--keep", "1");
        assertEquals(0, keep.exitCode(), keep.toString());
        String newest = keep.out().lines().skip(1).findFirst().orElseThrow().split("\\s+")[0];
        assertTrue(Files.isDirectory(photos.resolve("data")), "the other collection's snapshot is untouched");
        assertTrue(Files.isDirectory(snaps.resolve(newest).resolve("data")), "the snapshot just taken is kept");
        assertTrue(keep.err().contains("kiln: kept the newest 1 snapshot of data in collection default; deleted " + oldest + "\n"),
                keep.err());
        assertEquals("default", property(snaps.resolve(newest).resolve("snapshot.properties"), "collection"),
                "the snapshot carries its volume's collection");

        Kiln.Run latest = dirs.run("launch", "--volume", "data:latest");
        assertEquals(0, latest.exitCode(), latest.toString());
        String b = latest.out().lines().skip(1).findFirst().orElseThrow().split("\\s+")[0];
        String volume = property(fleet.resolve("instances/" + b + "/instance.properties"), "volume.0.id");
        assertEquals(newest, property(fleet.resolve("volumes/" + volume + "/volume.properties"), "from-snapshot"),
                "data:latest of the default collection, not the other collection's newer one");

        String c = launch(dirs, "--collection", "photos", "--volume", "data:latest");
        String restored = property(fleet.resolve("instances/" + c + "/instance.properties"), "volume.0.id");
        assertEquals("photos\n", Files.readString(fleet.resolve("volumes/" + restored + "/data/which.txt")));
        assertEquals("photos", property(fleet.resolve("volumes/" + restored + "/volume.properties"), "collection"));
        Kiln.Run listed = dirs.run("snapshots", "--collection", "photos");
        assertEquals(List.of("snap-local-0000b0b0"), listed.out().lines().skip(1).map(l -> l.split("\\s+")[0]).toList(),
                listed.toString());
    }

    @Test
    void aMalformedSnapshotIsSkippedAndNamedWhereverSnapshotsAreRead() throws Exception {
        Kiln dirs = kiln.env("KILN_LOCAL_VOLUMES", "dirs");
        Path snaps = dir.resolve("home/.local/state/kiln/fleet/snapshots");
        String a = launch(dirs, "--volume", "data:1");
        assertEquals(0, dirs.run("snapshot", a, "data").exitCode());
        Path broken = snaps.resolve("snap-local-x");
        Files.createDirectories(broken);
        Files.writeString(broken.resolve("snapshot.properties"), "role=worker\n");
        String skipping = "kiln: skipping " + broken + ": snapshot.properties has no 'volume-role'\n";

        Kiln.Run list = dirs.run("snapshots");
        assertEquals(0, list.exitCode(), list.toString());
        assertTrue(list.err().contains(skipping), list.err());
        assertEquals(1, list.out().lines().skip(1).count(), list.out());
        Kiln.Run keep = dirs.run("snapshot", a, "data", "--keep", "1");
        assertEquals(0, keep.exitCode(), keep.toString());
        assertTrue(keep.err().contains(skipping), keep.err());
        assertTrue(keep.err().matches("(?s).*kiln: kept the newest 1 snapshot of data in collection default; deleted snap-local-[0-9a-f]{8}\n.*"), keep.err());
        Kiln.Run latest = dirs.run("launch", "--volume", "data:latest");
        assertEquals(0, latest.exitCode(), latest.toString());
        assertTrue(latest.err().contains(skipping), latest.err());
        assertTrue(Files.exists(broken.resolve("snapshot.properties")), "the malformed one is left as it is");
    }

    @Test
    void withoutRootVolumesAreDirectoriesAndSourcesAreCopiedIntoTheWorkTree() throws Exception {
        for (String tool : List.of("tup", "sox", "flac", "lame", "oggenc", "opusenc", "rsync")) {
            Prerequisites.requireCommand(tool, "apt-get install tup fuse3 sox flac lame vorbis-tools opus-tools rsync");
        }
        Kiln dirs = kiln.env("KILN_LOCAL_VOLUMES", "dirs");
        Path music = dir.resolve("vibes");
        Process gen = new ProcessBuilder(VibesThroughAgentTest.EXAMPLE.resolve("generate").toString(), music.toString(), "--small")
                .redirectErrorStream(true).start();
        gen.getInputStream().readAllBytes();
        assertTrue(gen.waitFor(120, TimeUnit.SECONDS) && gen.exitValue() == 0, "generate");

        String ingest = launch(dirs, "--volume", "sources:1");
        assertEquals(0, dirs.run("push", music.toString(), ingest).exitCode());
        Kiln.Run snap = dirs.run("snapshot", ingest, "sources");
        assertEquals(0, snap.exitCode(), snap.toString());
        assertTrue(snap.err().contains("is a directory on this machine (no filesystem of its own to freeze); it is copied as it is"),
                snap.err());
        assertEquals(0, dirs.run("terminate", ingest).exitCode());

        Kiln.Run worker = dirs.run("launch", "--volume", "sources:latest", "--volume", "builds:1", "--boot-tree", "vibes",
                "--boot-profile", "opus");
        assertEquals(0, worker.exitCode(), worker.toString());
        assertTrue(worker.err().contains("no overlay without root: copying sources into the builds volume's work tree"), worker.err());
        String w = worker.out().lines().skip(1).findFirst().orElseThrow().split("\\s+")[0];
        // The boot build: the agent builds the Opus profile of vibes by itself once its volumes are there.
        String boot = "";
        for (int n = 0; n < 240 && !boot.contains("BUILD_STATE_SUCCEEDED"); n++) {
            Thread.sleep(250);
            boot = dirs.run("builds", "--agent", w, "-o", "json").out();
        }
        assertTrue(boot.contains("BUILD_STATE_SUCCEEDED") && boot.contains("kiln:boot") && boot.contains("/mnt/builds/work/vibes"), boot);
        Kiln.Run build = dirs.run("build", "--agent", w, "vibes", "--profiles-dir", VibesThroughAgentTest.EXAMPLE.resolve("profiles").toString());
        assertEquals(0, build.exitCode(), build.toString());
        assertTrue(build.err().contains("/instances/" + w + "/mnt/builds/work/vibes"), build.err());
        assertEquals(0, dirs.run("snapshot", w, "builds").exitCode());
        assertEquals(0, dirs.run("terminate", w).exitCode());

        Kiln.Run again = dirs.run("launch", "--volume", "sources:latest", "--volume", "builds:latest");
        assertEquals(0, again.exitCode(), again.toString());
        assertTrue(again.err().contains("warning: builds holds tup state, and without root a restored volume is a file copy"),
                again.err());
        String server = launch(dirs, "--role", "server", "--volume", "builds:latest");
        Path pulled = dir.resolve("pulled");
        Kiln.Run pull = dirs.run("pull", server, pulled.toString(), "--path", "/outputs/vibes/build-flac");
        assertEquals(0, pull.exitCode(), pull.toString());
        try (Stream<Path> files = Files.walk(pulled)) {
            assertEquals(8, files.filter(f -> f.toString().endsWith(".flac")).count());
        }
    }

    @Test
    void aLaunchTemplateGivesWhatFlagsDoNotAndUnknownKeysAreRefused() throws Exception {
        Path config = dir.resolve("home/.config/kiln/config.yml");
        Files.writeString(config, "templates:\n  preview:\n    ttl: 45m\n    collection: shop\n    label: {app: shop, pr: '1'}\n");
        Kiln.Run run = kiln.run("launch", "--role", "preview", "--label", "pr=7");
        assertEquals(0, run.exitCode(), run.toString());
        assertTrue(run.err().contains("kiln: using template 'preview' from " + config), run.err());
        String id = run.out().lines().skip(1).findFirst().orElseThrow().split("\\s+")[0];
        Kiln.Run ls = kiln.run("ls");
        assertTrue(ls.out().matches("(?s).*" + id + "\\s+preview\\s+app=shop,pr=7\\s+running\\s+ready\\s+-\\s+44m\\d\\ds.*"), ls.out());

        Files.writeString(config, "templates:\n  preview:\n    volumes: [data:1]\n");
        try {
            Kiln.Run bad = kiln.run("launch", "--role", "preview");
            assertEquals(3, bad.exitCode(), bad.toString());
            assertTrue(bad.err().contains("unknown launch option 'volumes' in template 'preview' of " + config
                    + " (known: ami, boot-build, boot-profile, boot-script, boot-tree, collection,"), bad.err());
        } finally {
            Files.delete(config); // tearDown's `kiln ls` reads it
        }
    }
}
