package dev.kiln.agent.volume;

import dev.kiln.testkit.LoopDevice;
import dev.kiln.testkit.Prerequisites;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneId;
import java.time.ZoneOffset;
import java.util.List;

import static dev.kiln.agent.volume.Fixture.MIB;
import static dev.kiln.agent.volume.Fixture.mounted;
import static dev.kiln.agent.volume.Fixture.sh;
import static dev.kiln.agent.volume.Fixture.spec;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Formatting needs proof, not evidence: real loop devices whose contents only a full look reveals. */
class BlankProofTest {

    @TempDir
    Path dir;

    Fixture fx;
    VolumeService volumes;

    @BeforeEach
    void setUp() throws Exception {
        fx = new Fixture(dir);
        volumes = fx.service(Duration.ofSeconds(2), List.of());
    }

    @AfterEach
    void tearDown() throws Exception {
        volumes.close();
        fx.close();
    }

    static final String LOOKS_BLANK = "it looks blank (no signature, and its first and last MiB are all zeros)";
    static final String NOTHING = "it was not formatted or mounted; nothing was written";
    static final String HOW = "give proof instead: let kiln launch create the volume (a new ROLE:SIZE volume is created"
            + " empty and its boot mount says created-empty: true), use a sparse image file for a loop device, or raise"
            + " kiln.volumes.zero-read-timeout";

    /** Asserts a refusal with this message: no mkfs, fsck or mount, and the device unchanged byte for byte. */
    void assertRefusedUntouched(VolumeService service, MountSpec spec, Path device, String message) throws Exception {
        String before = Fixture.sha256(device);
        VolumeRefusedException e = assertThrows(VolumeRefusedException.class, () -> service.mount(spec));
        assertEquals(message, e.getMessage());
        assertEquals(0, fx.calls("mkfs"), "mkfs calls");
        assertEquals(0, fx.calls("fsck"), "fsck calls");
        assertEquals(0, fx.calls("mount"), "mount calls");
        assertEquals(before, Fixture.sha256(device), "the device is unchanged, byte for byte");
        assertTrue(mounted(spec.mountPoint()).isEmpty());
    }

    @Test
    void refusesADiskWhosePartitionTableWasWipedButWhosePartitionStillHoldsExt4() throws Exception {
        LoopDevice d = fx.loop(64 * MIB);
        // A GPT with one partition at 2 MiB, an ext4 filesystem in it, then the table wiped the
        // way sgdisk --zap-all or dd does: the first and last MiB zeroed. blkid and wipefs find
        // nothing on the whole disk, and both edges are zeros.
        Prerequisites.requireCommand("sfdisk", "apt-get install fdisk");
        partition(d.device(), 4096, 98304);
        sh("mkfs.ext4", "-q", "-L", "precious", "-E", "offset=" + 2 * MIB, d.device().toString(), "48M");
        zero(d.device(), 0, MIB);
        zero(d.device(), 63 * MIB, MIB);
        assertEquals(FormatDecision.BLANK, new FormatDecider(fx.tools()).decide(d.device()).decision(),
                "the signature probes and the edges are fooled");
        long first = firstNonZero(d.device());
        assertTrue(first >= 2 * MIB + 1024 && first < 3 * MIB, "the superblock, 1 KiB into the partition: " + first);
        assertRefusedUntouched(volumes, spec(d.device(), dir.resolve("mnt/data"), true), d.device(), "refusing to format "
                + d.device() + ": " + LOOKS_BLANK + ", but byte " + first + " (2 MiB in) is not zero: it holds"
                + " data that blkid and wipefs do not recognise, such as partitions, LVM or RAID members whose table or"
                + " signatures were wiped; look at it (e.g. blkid -p -O OFFSET, testdisk), and if its contents are"
                + " disposable, use a new empty volume or zero it whole (blkdiscard -z); " + NOTHING);
        assertTrue(sh("blkid", "-p", "-O", Long.toString(2 * MIB), "-o", "export", d.device().toString())
                .contains("LABEL=precious"), "the filesystem in the wiped partition is still there");
    }

    @Test
    void formatsASparseImageWithNoDataOnTheProofOfItsHoles() throws Exception {
        LoopDevice d = fx.loop(64 * MIB);
        Path mp = dir.resolve("mnt/data");
        MountResult r = volumes.mount(spec(d.device(), mp, true));
        assertTrue(r.formatted());
        assertEquals("ext4", mounted(mp).orElseThrow().type());
        assertEquals(1, fx.calls("firstData"), "its image file was searched for data");
        assertEquals(0, fx.calls("firstNonZero"), "the holes are the proof: the device was not read in full");
    }

    @Test
    void refusesAnImageWithOneNonZeroByteInTheMiddle() throws Exception {
        LoopDevice d = fx.loop(64 * MIB);
        // Written through the device, as a user would: it may sit in the page cache, not yet in the file.
        try (RandomAccessFile raf = new RandomAccessFile(d.device().toFile(), "rw")) {
            raf.seek(32 * MIB + 123);
            raf.write(0x5a);
        }
        assertRefusedUntouched(volumes, spec(d.device(), dir.resolve("mnt/data"), true), d.device(), "refusing to format "
                + d.device() + ": " + LOOKS_BLANK + ", but byte " + (32 * MIB + 123) + " (32 MiB in) is not zero: it"
                + " holds data that blkid and wipefs do not recognise, such as partitions, LVM or RAID members whose table"
                + " or signatures were wiped; look at it (e.g. blkid -p -O OFFSET, testdisk), and if its contents are"
                + " disposable, use a new empty volume or zero it whole (blkdiscard -z); " + NOTHING);
        assertEquals(1, fx.calls("firstData"), "the image's data was found, so its holes proved nothing");
    }

    @Test
    void formatsADeviceWithoutHolesAfterReadingItInFullAndFindingOnlyZeros() throws Exception {
        LoopDevice d = fx.loopWithoutHoles(160 * MIB);
        Path mp = dir.resolve("mnt/data");
        MountResult r = volumes.mount(spec(d.device(), mp, true));
        assertTrue(r.formatted());
        assertEquals("ext4", mounted(mp).orElseThrow().type());
        assertEquals(3, fx.calls("firstNonZero"), "read in full, 64 MiB at a time");
        assertEquals(1, fx.calls("mkfs"));
    }

    @Test
    void refusesWithoutProofWhenReadingInFullIsTurnedOff() throws Exception {
        LoopDevice d = fx.loopWithoutHoles(64 * MIB);
        fx.zeroReadTimeout = Duration.ZERO;
        try (VolumeService noReads = fx.service(Duration.ofSeconds(2), List.of())) {
            assertRefusedUntouched(noReads, spec(d.device(), dir.resolve("mnt/data"), true), d.device(),
                    "refusing to format " + d.device() + ": " + LOOKS_BLANK + ", but nothing proves it: it is not a volume"
                            + " the controller created empty for this launch, nor a loop device whose image file is all"
                            + " holes, and reading it in full is turned off (kiln.volumes.zero-read-timeout: 0s); " + HOW
                            + "; " + NOTHING);
        }
        assertEquals(0, fx.calls("firstNonZero"));
    }

    @Test
    void refusesWhenReadingInFullRunsOutOfTime() throws Exception {
        LoopDevice d = fx.loopWithoutHoles(192 * MIB);
        // Each 64 MiB slice "takes" 40 minutes: the third would start after the hour.
        Instant t0 = Instant.parse("2026-11-22T00:00:00Z");
        fx.proverClock = new Clock() {
            @Override
            public ZoneId getZone() {
                return ZoneOffset.UTC;
            }

            @Override
            public Clock withZone(ZoneId zone) {
                return this;
            }

            @Override
            public Instant instant() {
                return t0.plus(Duration.ofMinutes(40).multipliedBy(fx.calls("firstNonZero")));
            }
        };
        try (VolumeService slow = fx.service(Duration.ofSeconds(2), List.of())) {
            assertRefusedUntouched(slow, spec(d.device(), dir.resolve("mnt/data"), true), d.device(),
                    "refusing to format " + d.device() + ": " + LOOKS_BLANK + ", but nothing proves it: it is not a volume"
                            + " the controller created empty for this launch, nor a loop device whose image file is all"
                            + " holes, and reading all 192 MiB of it for zeros did not finish within 1h"
                            + " (kiln.volumes.zero-read-timeout; the first 128 MiB are zeros); " + HOW + "; " + NOTHING);
        }
        assertEquals(2, fx.calls("firstNonZero"));
    }

    @Test
    void formatsAVolumeTheControllerCreatedEmptyWithoutReadingIt() throws Exception {
        LoopDevice d = fx.loopWithoutHoles(64 * MIB);
        fx.showAsEbs(d.device(), VOLUME);
        Path mp = dir.resolve("mnt/builds");
        MountResult r = volumes.mount(createdEmpty(mp));
        assertTrue(r.formatted());
        assertEquals(VOLUME, r.volume().volumeId());
        assertEquals(0, fx.calls("firstNonZero"), "the controller's word for its own new volume is the proof");
        assertEquals(List.of(VOLUME), Files.readAllLines(fx.state.resolve("volumes/created-empty-used")));
    }

    @Test
    void theCreatedEmptyProofCountsOnlyOnceOnAnInstance() throws Exception {
        LoopDevice d = fx.loopWithoutHoles(64 * MIB);
        fx.showAsEbs(d.device(), VOLUME);
        Path mp = dir.resolve("mnt/builds");
        assertTrue(volumes.mount(createdEmpty(mp)).formatted());
        volumes.unmount(mp, Duration.ofSeconds(2));
        // Since then someone wiped its signatures by hand; the user data still says created-empty
        // after a reboot, but the volume has been written since it was created.
        zero(d.device(), 0, MIB);
        zero(d.device(), 63 * MIB, MIB);
        String before = Fixture.sha256(d.device());
        VolumeRefusedException e = assertThrows(VolumeRefusedException.class, () -> volumes.mount(createdEmpty(mp)));
        assertTrue(e.getMessage().startsWith("refusing to format " + d.device() + " (" + VOLUME + "): " + LOOKS_BLANK
                + ", but byte "), e.getMessage());
        assertTrue(e.getMessage().endsWith(NOTHING), e.getMessage());
        assertEquals(1, fx.calls("mkfs"), "formatted the first time only");
        assertEquals(before, Fixture.sha256(d.device()));
    }

    @Test
    void createdEmptyNeedsTheVolumeIdItVouchesFor() throws Exception {
        LoopDevice d = fx.loop(64 * MIB);
        MountSpec byDevice = new MountSpec(new VolumeRef("", d.device().toString()), dir.resolve("mnt/data"),
                Filesystem.EXT4, false, false, false, true, "", Duration.ofSeconds(2), null, null, true);
        assertEquals("created-empty needs the EBS volume id (vol-...) it vouches for; a device path alone could be any disk",
                assertThrows(IllegalArgumentException.class, () -> volumes.mount(byDevice)).getMessage());
        assertEquals(0, fx.calls("mkfs"));
    }

    static final String VOLUME = "vol-0ccccccccccccccc3";

    /** A boot mount of {@link #VOLUME} as kiln launch writes it for a volume it created empty. */
    static MountSpec createdEmpty(Path mountPoint) {
        return new MountSpec(new VolumeRef(VOLUME, ""), mountPoint, Filesystem.EXT4, false, false, true, true, "builds",
                Duration.ofSeconds(2), null, null, true);
    }

    /** A GPT with one Linux partition of {@code sectors} sectors at sector {@code start}. */
    static void partition(Path device, long start, long sectors) throws Exception {
        ProcessBuilder pb = new ProcessBuilder("sfdisk", "-q", device.toString()).redirectErrorStream(true);
        pb.environment().put("PATH", "/usr/sbin:/usr/bin:/sbin:/bin");
        Process p = pb.start();
        p.getOutputStream().write(("label: gpt\nstart=" + start + ", size=" + sectors + ", type=L\n").getBytes());
        p.getOutputStream().close();
        String out = new String(p.getInputStream().readAllBytes());
        // sfdisk cannot make the kernel re-read a loop device's table (no partscan); the table is on disk.
        if (p.waitFor() != 0 && !out.contains("Re-reading the partition table failed")) {
            throw new AssertionError("sfdisk failed: " + out);
        }
    }

    /** The offset of the device's first non-zero byte, read with the test's own code; -1 if none. */
    static long firstNonZero(Path device) throws Exception {
        try (java.io.InputStream in = new java.io.BufferedInputStream(Files.newInputStream(device), (int) MIB)) {
            long at = 0;
            for (int b = in.read(); b >= 0; b = in.read(), at++) {
                if (b != 0) {
                    return at;
                }
            }
            return -1;
        }
    }

    /** Writes zeros over [offset, offset + length) of the device. */
    static void zero(Path device, long offset, long length) throws Exception {
        try (RandomAccessFile raf = new RandomAccessFile(device.toFile(), "rw")) {
            raf.seek(offset);
            raf.write(new byte[(int) length]);
            raf.getFD().sync();
        }
    }
}
