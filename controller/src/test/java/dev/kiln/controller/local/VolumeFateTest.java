package dev.kiln.controller.local;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
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
        return VolumeFate.decide("vol-local-00000001", "data", volume, p, VolumeStamp.of(volume), List.of(), sourceKept, snapshots);
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
                VolumeStamp.of(volume), List.of("/dev/loop7"), false, Map.of());
        assertFalse(attached.delete());
        assertEquals("its image is still attached to /dev/loop7", attached.why());
        VolumeFate.Fate unknown = decide(volume, new Properties(), false, Map.of());
        assertFalse(unknown.delete());
        assertTrue(unknown.why().startsWith("unsaved: its history is unknown"), unknown.why());
    }
}
