package dev.kiln.controller.local;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Properties;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The data-safe rule for an ended instance's volume, on real directories and image files. */
class VolumeFateTest {

    @TempDir
    Path dir;

    Properties attached(Path volume, String fromSnapshot) {
        Properties p = new Properties();
        p.setProperty("role", "data");
        p.setProperty("attach-stamp", VolumeStamp.of(volume));
        if (fromSnapshot != null) {
            p.setProperty("from-snapshot", fromSnapshot);
        }
        return p;
    }

    VolumeFate.Fate decide(Path volume, Properties p, boolean sourceKept, Map<String, String> snapshots) {
        return VolumeFate.decide("vol-local-00000001", "data", volume, p, VolumeStamp.of(volume), List.of(), sourceKept, snapshots,
                Optional::empty);
    }

    @Test
    void everyWriteToADirectoryVolumeChangesItsStamp() throws Exception {
        Path volume = Files.createDirectories(dir.resolve("vol/data")).getParent();
        Files.createDirectories(volume.resolve("data/a/b"));
        Files.writeString(volume.resolve("data/a/b/f"), "1");
        String before = VolumeStamp.of(volume);
        assertEquals(before, VolumeStamp.of(volume), "reading changes nothing");
        Files.readString(volume.resolve("data/a/b/f"));
        assertEquals(before, VolumeStamp.of(volume));
        Files.writeString(volume.resolve("data/a/b/f"), "2");
        String written = VolumeStamp.of(volume);
        assertNotEquals(before, written);
        Files.delete(volume.resolve("data/a/b/f"));
        assertNotEquals(written, VolumeStamp.of(volume), "a removed file moves its directory's change time");
    }

    @Test
    void aBlankVolumeNeverWrittenGoesAndOneWrittenWithoutASnapshotStays() throws Exception {
        Path volume = Files.createDirectories(dir.resolve("vol/data")).getParent();
        Properties p = attached(volume, null);
        VolumeFate.Fate blank = decide(volume, p, false, Map.of());
        assertTrue(blank.delete());
        assertEquals("created blank and never written", blank.why());

        Files.writeString(volume.resolve("data/db.sqlite"), "rows");
        VolumeFate.Fate unsaved = decide(volume, p, false, Map.of());
        assertFalse(unsaved.delete());
        assertEquals("vol-local-00000001 (data): kept in " + volume + ": unsaved: written, and no snapshot of it exists",
                unsaved.describe());

        String atSnapshot = VolumeStamp.of(volume);
        assertTrue(decide(volume, p, false, Map.of("snap-local-0000000a", atSnapshot)).delete(), "its snapshot holds all of it");
        Files.writeString(volume.resolve("data/db.sqlite"), "more rows");
        VolumeFate.Fate after = decide(volume, p, false, Map.of("snap-local-0000000a", atSnapshot));
        assertFalse(after.delete());
        assertEquals("unsaved: written after its last snapshot (snap-local-0000000a)", after.why());
    }

    @Test
    void aRestoredVolumeGoesOnlyWhileItsSnapshotExists() throws Exception {
        Path volume = dir.resolve("vol");
        Files.createDirectories(volume);
        try (var raf = new java.io.RandomAccessFile(volume.resolve("volume.img").toFile(), "rw")) {
            raf.setLength(1 << 20);
        }
        Properties p = attached(volume, "snap-local-0000000b");
        assertTrue(decide(volume, p, true, Map.of()).delete());
        VolumeFate.Fate orphaned = decide(volume, p, false, Map.of());
        assertFalse(orphaned.delete());
        assertEquals("unsaved: restored from snap-local-0000000b, which no longer exists", orphaned.why());
        try (var raf = new java.io.RandomAccessFile(volume.resolve("volume.img").toFile(), "rw")) {
            raf.write(1);
        }
        VolumeFate.Fate written = decide(volume, p, true, Map.of());
        assertFalse(written.delete());
        assertEquals("unsaved: written since it was restored from snap-local-0000000b, and no snapshot of it holds that",
                written.why());
    }

    @Test
    void aVolumeMarkedToKeepStillAttachedOrOfUnknownHistoryStays() throws Exception {
        Path volume = Files.createDirectories(dir.resolve("vol/data")).getParent();
        Properties keep = attached(volume, null);
        keep.setProperty("keep", "true");
        assertEquals("marked to keep", decide(volume, keep, false, Map.of()).why());
        VolumeFate.Fate attached = VolumeFate.decide("vol-local-00000001", "data", volume, attached(volume, null),
                VolumeStamp.of(volume), List.of("/dev/loop7"), false, Map.of(), Optional::empty);
        assertFalse(attached.delete());
        assertEquals("its image is still attached to /dev/loop7", attached.why());
        VolumeFate.Fate unknown = decide(volume, new Properties(), false, Map.of());
        assertFalse(unknown.delete());
        assertTrue(unknown.why().startsWith("unsaved: its history is unknown"), unknown.why());
    }

    /** A 64 MiB ext4 image made by mkfs.ext4 (a regular file needs no root), and a snapshot copy of it. */
    Path[] ext4AndCopy() throws Exception {
        dev.kiln.os.Executables.find("mkfs.ext4", LocalTools.TOOL_PATH);
        Path image = Files.createDirectories(dir.resolve("vol")).resolve("volume.img");
        try (var raf = new java.io.RandomAccessFile(image.toFile(), "rw")) {
            raf.setLength(64L << 20);
        }
        LocalTools.run("mkfs.ext4", "-q", "-m", "0", image.toString());
        LocalTools.run("debugfs", "-w", "-R", "mkdir job", image.toString());
        Path copy = Files.createDirectories(dir.resolve("snap")).resolve("volume.img");
        LocalTools.run("cp", "--sparse=always", image.toString(), copy.toString());
        return new Path[] {image, copy};
    }

    @Test
    void anImageThatDiffersFromItsSnapshotOnlyInItsSuperblockIsHeldThere() throws Exception {
        Path[] ic = ext4AndCopy();
        assertEquals(Optional.of("snap-local-0000000c"), ImageProof.heldIn(ic[0], Map.of("snap-local-0000000c", ic[1])));
        // What a mount and the agent's fsck write: the superblock (its mount count, times).
        LocalTools.run("debugfs", "-w", "-R", "ssv mnt_count 7", ic[0].toString());
        assertFalse(java.util.Arrays.equals(Files.readAllBytes(ic[0]), Files.readAllBytes(ic[1])));
        assertEquals(Optional.of("snap-local-0000000c"), ImageProof.heldIn(ic[0], Map.of("snap-local-0000000c", ic[1])));

        Properties p = attached(ic[0].getParent(), null);
        Files.setLastModifiedTime(ic[0], java.nio.file.attribute.FileTime.from(java.time.Instant.now())); // a new stamp
        VolumeFate.Fate f = VolumeFate.decide("vol-local-00000001", "data", ic[0].getParent(), p,
                VolumeStamp.of(ic[0].getParent()), List.of(), false, Map.of("snap-local-0000000c", "image:0:0"),
                () -> ImageProof.heldIn(ic[0], Map.of("snap-local-0000000c", ic[1])));
        assertTrue(f.delete(), f.describe());
        assertEquals("all of it is in snap-local-0000000c (since then only the mounts' own superblock, journal and group-descriptor writes)",
                f.why());
    }

    @Test
    void anImageWhoseInodeTablesWereZeroedAfterItsSnapshotIsHeldThere() throws Exception {
        Path[] ic = ext4AndCopy();
        // The snapshot taken while the kernel's lazy initialisation had not reached group 1 yet.
        String flags = groupFlags(ic[1], 1);
        assertTrue(flags.contains("ITABLE_ZEROED"), flags);
        setGroup(ic[1], "set_bg 1 flags 3");
        assertFalse(groupFlags(ic[1], 1).contains("ITABLE_ZEROED"), groupFlags(ic[1], 1));
        assertEquals(Optional.of("snap-local-0000000f"), ImageProof.heldIn(ic[0], Map.of("snap-local-0000000f", ic[1])));

        // Any other change to a group descriptor is a change the snapshot lacks.
        setGroup(ic[0], "set_bg 1 itable_unused 2000");
        assertEquals(Optional.empty(), ImageProof.heldIn(ic[0], Map.of("snap-local-0000000f", ic[1])));
    }

    /** Runs one debugfs {@code set_bg} command and recomputes that group's checksum in the same session. */
    void setGroup(Path image, String command) throws Exception {
        Path commands = Files.writeString(dir.resolve("debugfs.cmd"), command + "\nset_bg 1 checksum calc\n");
        LocalTools.run("debugfs", "-w", "-f", commands.toString(), image.toString());
    }

    /** The flags {@code dumpe2fs} prints for block group {@code group}. */
    static String groupFlags(Path image, int group) throws Exception {
        return LocalTools.stdout("dumpe2fs", image.toString()).lines().filter(l -> l.startsWith("Group " + group + ":"))
                .findFirst().orElseThrow();
    }

    @Test
    void anImageWithAnyOtherChangeOrAnUncleanFilesystemIsNotHeld() throws Exception {
        Path[] ic = ext4AndCopy();
        LocalTools.run("debugfs", "-w", "-R", "mkdir job/more", ic[0].toString());
        assertEquals(Optional.empty(), ImageProof.heldIn(ic[0], Map.of("snap-local-0000000d", ic[1])), "a new directory");

        Path[] again = ext4AndCopy();
        // Only its superblock differs, but it says its journal needs replaying: that proves nothing.
        LocalTools.run("debugfs", "-w", "-R", "feature needs_recovery", again[0].toString());
        assertEquals(Optional.empty(), ImageProof.heldIn(again[0], Map.of("snap-local-0000000d", again[1])));
        LocalTools.run("debugfs", "-w", "-R", "feature -needs_recovery", again[0].toString());
        LocalTools.run("debugfs", "-w", "-R", "ssv state 0", again[0].toString());
        assertEquals(Optional.empty(), ImageProof.heldIn(again[0], Map.of("snap-local-0000000d", again[1])), "not clean");

        Path[] grown = ext4AndCopy();
        try (var raf = new java.io.RandomAccessFile(grown[0].toFile(), "rw")) {
            raf.setLength(65L << 20);
        }
        assertEquals(Optional.empty(), ImageProof.heldIn(grown[0], Map.of("snap-local-0000000d", grown[1])), "sizes differ");
        assertEquals(Optional.empty(), ImageProof.heldIn(ic[1], Map.of("snap-local-0000000d", dir.resolve("gone.img"))));
    }

    @Test
    void aSnapshotCopyIsLeftWithNoJournalToReplay() throws Exception {
        Path[] ic = ext4AndCopy();
        // What a copy of a mounted filesystem can carry: a journal its first mount would replay, even read-only.
        LocalTools.run("debugfs", "-w", "-R", "feature needs_recovery", ic[1].toString());
        assertTrue(LocalTools.run("dumpe2fs", "-h", ic[1].toString()).contains("needs_recovery"));
        LocalSnapshots.replayJournal(ic[1]);
        assertFalse(LocalTools.run("dumpe2fs", "-h", ic[1].toString()).contains("needs_recovery"));
        assertEquals(Optional.of("snap-local-0000000e"), ImageProof.heldIn(ic[0], Map.of("snap-local-0000000e", ic[1])));

        Path blank = dir.resolve("blank.img");
        Files.write(blank, new byte[1 << 20]);
        LocalSnapshots.replayJournal(blank);
        assertTrue(java.util.Arrays.equals(new byte[1 << 20], Files.readAllBytes(blank)), "not ext4: left as it is");
    }
}
