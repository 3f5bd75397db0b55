package dev.kiln.e2e;

import dev.kiln.testkit.Prerequisites;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Volumes that outlive their instances on the local provider, as a user sees them: a kept volume
 * (on a loop device) is unmounted before its instance ends, stays, and attaches again with its
 * files; `kiln volumes --fleet` lists it; `kiln volume rm` refuses what it must; and an always-on
 * instance (--forever) has no deadline to extend. Instances are real kiln-agent processes.
 */
class LocalVolumesTest {

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

    String volumeOf(String instance, String role) throws Exception {
        return LocalFleetCleanupTest.volumeOf(fleet, instance, role);
    }

    @Test
    void aKeptVolumeIsUnmountedSurvivesTerminateAndAttachesAgainWithItsFiles() throws Exception {
        Prerequisites.requireRoot("loop devices and mounts");
        String a = LocalFleetCleanupTest.launched(kiln.run("launch", "--role", "dev", "--volume", "data:1",
                "--volume", "scratch:1", "--keep-volume", "data"));
        String data = volumeOf(a, "data");
        String scratch = volumeOf(a, "scratch");
        Path mnt = fleet.resolve("instances/" + a + "/mnt");
        Files.writeString(mnt.resolve("data/notes.txt"), "kept across instances\n");
        Files.writeString(mnt.resolve("scratch/draft.txt"), "never snapshotted\n");

        Kiln.Run inUse = kiln.run("volume", "rm", data);
        assertEquals(5, inUse.exitCode(), inUse.toString());
        assertTrue(inUse.err().contains(data + " is in use by " + a + "; end it first (`kiln terminate " + a + "`)"), inUse.err());

        Kiln.Run term = kiln.run("terminate", a);
        assertEquals(0, term.exitCode(), term.toString());
        assertTrue(term.err().contains("kiln: unmounted " + mnt.resolve("data") + " (synced, confirmed) before " + a + " ends"),
                term.err());
        assertTrue(term.err().contains(data + " (data): kept in " + fleet.resolve("volumes/" + data) + ": marked to keep"), term.err());
        assertTrue(term.err().contains(scratch + " (scratch): kept in " + fleet.resolve("volumes/" + scratch)
                + ": unsaved: written, and no snapshot of it exists"), term.err());
        assertTrue(term.err().contains("kiln: " + data + " (data) is kept; attach it again with: kiln launch --role dev --volume data:"
                + data), term.err());

        Kiln.Run listed = kiln.run("volumes", "--fleet");
        assertEquals(0, listed.exitCode(), listed.toString());
        assertTrue(listed.out().startsWith("VOLUME"), listed.out());
        assertTrue(listed.out().matches("(?s).*" + data + "\\s+data\\s+1G\\s+available\\s+\\S+Z\\s+kept\n.*"), listed.out());
        assertTrue(listed.out().matches("(?s).*" + scratch + "\\s+scratch\\s+1G\\s+available\\s+\\S+Z\\s+unsaved\n.*"), listed.out());
        Kiln.Run json = kiln.run("volumes", "--fleet", "-o", "json");
        assertEquals(0, json.exitCode(), json.toString());
        assertTrue(json.out().contains("\"id\": \"" + scratch + "\"") && json.out().contains("\"unsaved\": true")
                && json.out().contains("\"unsaved_reason\": \"unsaved: written, and no snapshot of it exists\""), json.out());

        // Attached again, as it is: the file is there, nothing was formatted.
        String b = LocalFleetCleanupTest.launched(kiln.run("launch", "--role", "dev", "--volume", "data:" + data));
        assertEquals("kept across instances\n", Files.readString(fleet.resolve("instances/" + b + "/mnt/data/notes.txt")));
        Kiln.Run shown = kiln.run("volumes", "--fleet");
        assertTrue(shown.out().matches("(?s).*" + data + "\\s+data\\s+1G\\s+in use by " + b + "\\s+\\S+Z\\s+kept\n.*"), shown.out());
        Kiln.Run twice = kiln.run("launch", "--volume", "data:" + data);
        assertEquals(5, twice.exitCode(), twice.toString());
        assertTrue(twice.err().contains(data + " is in use by " + b + "; a volume is attached to one instance at a time"), twice.err());
        assertEquals(0, kiln.run("terminate", b).exitCode());

        // Unsaved, but asked for by id: deleted.
        Kiln.Run rm = kiln.run("volume", "rm", scratch);
        assertEquals(0, rm.exitCode(), rm.toString());
        assertEquals(scratch + " deleted\n", rm.out());
        assertFalse(Files.exists(fleet.resolve("volumes/" + scratch)));
        assertTrue(Files.isRegularFile(fleet.resolve("volumes/" + data + "/volume.img")), "the kept volume stays");
    }

    @Test
    void anExistingVolumeAttachedWithoutKeepIsNeverDeletedOnAGuess() throws Exception {
        Kiln dirs = kiln.env("KILN_LOCAL_VOLUMES", "dirs");
        String a = LocalFleetCleanupTest.launched(dirs.run("launch", "--volume", "data:1", "--keep-volume", "data"));
        String data = volumeOf(a, "data");
        Files.writeString(fleet.resolve("volumes/" + data + "/data/notes.txt"), "precious\n");
        assertEquals(0, dirs.run("terminate", a).exitCode());
        // A volume.properties that says keep is sticky; without it the rule decides, and what the volume held is no snapshot's.
        Path props = fleet.resolve("volumes/" + data + "/volume.properties");
        Files.writeString(props, Files.readString(props).replace("keep=true", "keep=false"));

        String b = LocalFleetCleanupTest.launched(dirs.run("launch", "--volume", "data:" + data));
        Kiln.Run term = dirs.run("terminate", b);
        assertEquals(0, term.exitCode(), term.toString());
        assertTrue(term.err().contains(data + " (data): kept in " + fleet.resolve("volumes/" + data)
                + ": unsaved: it held data when it was attached, and no snapshot of it exists"), term.err());
        assertEquals("precious\n", Files.readString(fleet.resolve("volumes/" + data + "/data/notes.txt")));
    }

    @Test
    void aKeptBuildsVolumeUnderAnOverlayIsUnmountedAfterItAndReapDecidesForACrashedInstance() throws Exception {
        Prerequisites.requireRoot("loop devices and mounts");
        String a = LocalFleetCleanupTest.launched(kiln.run("launch", "--volume", "sources:1", "--volume", "builds:1",
                "--keep-volume", "builds"));
        Path instance = fleet.resolve("instances/" + a);
        Kiln.Run term = kiln.run("terminate", a);
        assertEquals(0, term.exitCode(), term.toString());
        String overlay = "kiln: unmounted " + instance.resolve("srv/work") + " (synced, confirmed)";
        String builds = "kiln: unmounted " + instance.resolve("mnt/builds") + " (synced, confirmed)";
        assertTrue(term.err().contains(overlay) && term.err().indexOf(overlay) < term.err().indexOf(builds), term.err());

        // An instance whose agent died: `kiln reap` applies the rule to its volumes.
        Kiln dirs = kiln.env("KILN_LOCAL_VOLUMES", "dirs");
        String b = LocalFleetCleanupTest.launched(dirs.run("launch", "--volume", "scratch:1"));
        String scratch = volumeOf(b, "scratch");
        Files.writeString(fleet.resolve("volumes/" + scratch + "/data/draft.txt"), "never snapshotted\n");
        long pid = Long.parseLong(Files.readString(fleet.resolve("instances/" + b + "/agent.pid")).strip());
        ProcessHandle agent = ProcessHandle.of(pid).orElseThrow();
        agent.destroyForcibly(); // a crash: nothing of Kiln's runs at its end
        agent.onExit().get();
        Kiln.Run reap = dirs.run("reap");
        assertEquals(0, reap.exitCode(), reap.toString());
        assertTrue(reap.err().contains(scratch + " (scratch): kept in " + fleet.resolve("volumes/" + scratch)
                + ": unsaved: written, and no snapshot of it exists"), reap.err());
        assertEquals("never snapshotted\n", Files.readString(fleet.resolve("volumes/" + scratch + "/data/draft.txt")));
    }

    @Test
    void volumeRmRefusesWhatIsNotKilnsUnlessForcedAndSaysWhatIsUnknown() throws Exception {
        Path stranger = Files.createDirectories(fleet.resolve("volumes/vol-local-0badc0de"));
        Files.writeString(stranger.resolve("mine.txt"), "someone's\n");
        Kiln.Run refused = kiln.run("volume", "rm", "vol-local-0badc0de");
        assertEquals(5, refused.exitCode(), refused.toString());
        assertTrue(refused.err().contains("vol-local-0badc0de was not created by Kiln"), refused.err());
        assertTrue(Files.exists(stranger.resolve("mine.txt")));
        Kiln.Run forced = kiln.run("volume", "rm", "vol-local-0badc0de", "--force");
        assertEquals(0, forced.exitCode(), forced.toString());
        assertFalse(Files.exists(stranger));

        Kiln.Run unknown = kiln.run("volume", "rm", "vol-local-12345678");
        assertEquals(6, unknown.exitCode(), unknown.toString());
        assertTrue(unknown.err().contains("no local volume vol-local-12345678"), unknown.err());
        Kiln.Run attach = kiln.run("launch", "--volume", "data:vol-local-12345678");
        assertEquals(6, attach.exitCode(), attach.toString());
        assertTrue(attach.err().contains("no local volume vol-local-12345678") && attach.err().contains("nothing was launched"),
                attach.err());
        Kiln.Run keepWhat = kiln.run("launch", "--volume", "data:1", "--keep-volume", "cache");
        assertEquals(2, keepWhat.exitCode(), keepWhat.toString());
        assertTrue(keepWhat.err().contains("--keep-volume cache names no volume of this launch (its volumes: data)"), keepWhat.err());
    }

    @Test
    void aForeverInstanceShowsForeverAndExtendSaysItHasNoDeadline() throws Exception {
        Kiln.Run both = kiln.run("launch", "--forever", "--ttl", "1h");
        assertEquals(2, both.exitCode(), both.toString());
        assertTrue(both.err().contains("--forever and --ttl 1h contradict each other"), both.err());

        String a = LocalFleetCleanupTest.launched(kiln.run("launch", "--role", "server", "--forever"));
        Kiln.Run ls = kiln.run("ls");
        assertEquals(0, ls.exitCode(), ls.toString());
        assertTrue(ls.out().matches("(?s).*" + a + "\\s.*\\sforever\\b.*"), ls.out());
        Kiln.Run extend = kiln.run("extend", a, "1h");
        assertEquals(0, extend.exitCode(), extend.toString());
        assertEquals(a + ": no deadline (launched with --forever); nothing changed: it runs until `kiln stop` or"
                + " `kiln terminate`\n", extend.out());
    }
}
