package dev.kiln.agent.volume;

import dev.kiln.testkit.LoopDevice;
import dev.kiln.testkit.UnreadableDevice;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Set;

import static dev.kiln.agent.volume.Fixture.MIB;
import static dev.kiln.agent.volume.Fixture.mounted;
import static dev.kiln.agent.volume.Fixture.sh;
import static dev.kiln.agent.volume.Fixture.spec;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Mounting on real loop devices: only a provably blank device is formatted (and only when
 * allowed); existing filesystems are mounted untouched; everything else is refused with zero
 * mkfs calls and not one byte changed.
 */
class MounterTest {

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

    int ownerOf(Path p) throws Exception {
        return (Integer) Files.getAttribute(p, "unix:uid", LinkOption.NOFOLLOW_LINKS);
    }

    /** Asserts a refusal: the exact message, no mkfs, fsck or mount, and the device unchanged byte for byte. */
    void assertRefusedUntouched(Path device, Path mountPoint, boolean allowFormat, String message) throws Exception {
        String before = Fixture.sha256(device);
        VolumeRefusedException e = assertThrows(VolumeRefusedException.class,
                () -> volumes.mount(spec(device, mountPoint, allowFormat)));
        assertEquals(message, e.getMessage());
        assertEquals(0, fx.calls("mkfs"), "mkfs calls");
        assertEquals(0, fx.calls("fsck"), "fsck calls");
        assertEquals(0, fx.calls("mount"), "mount calls");
        assertEquals(before, Fixture.sha256(device), "the device is unchanged, byte for byte");
        assertTrue(mounted(mountPoint).isEmpty());
    }

    @Test
    void formatsABlankDeviceAsExt4OwnedByTheBuildUserAndMountsItHardened() throws Exception {
        LoopDevice d = fx.loop(64 * MIB);
        Path mp = dir.resolve("mnt/data");
        MountResult r = volumes.mount(spec(d.device(), mp, true));
        assertTrue(r.formatted());
        assertFalse(r.alreadyMounted());
        assertEquals(1, fx.calls("mkfs"));
        MountTable.Entry e = mounted(mp).orElseThrow();
        assertEquals("ext4", e.type());
        assertTrue(e.options().containsAll(Set.of("rw", "nodev", "nosuid")), e.options().toString());
        assertFalse(e.options().contains("noexec"));
        assertEquals(fx.owner().uid(), ownerOf(mp), "the build user owns the new filesystem's root");
        String tune = sh("tune2fs", "-l", d.device().toString());
        assertTrue(tune.contains("Filesystem volume name:   data\n"), "labelled after the mount point");
        assertTrue(tune.matches("(?s).*Reserved block count:\\s+0\n.*"), "-m 0: no blocks reserved for root");
        assertEquals("ext4", r.volume().filesystem());
        assertEquals(FormatDecision.HAS_DATA, r.volume().decision());
    }

    @Test
    void formatsXfsOnRequest() throws Exception {
        LoopDevice d = fx.loop(320 * MIB);
        Path mp = dir.resolve("mnt/builds");
        MountResult r = volumes.mount(new MountSpec(new VolumeRef("", d.device().toString()), mp, Filesystem.XFS, false,
                true, false, true, "builds", Duration.ofSeconds(2), null, null));
        assertTrue(r.formatted());
        MountTable.Entry e = mounted(mp).orElseThrow();
        assertEquals("xfs", e.type());
        assertTrue(e.options().containsAll(Set.of("rw", "nodev", "nosuid", "noexec")), e.options().toString());
        assertEquals(fx.owner().uid(), ownerOf(mp));
        assertTrue(sh("blkid", "-p", "-o", "export", d.device().toString()).contains("LABEL=builds"));
    }

    @Test
    void leavesABlankDeviceBlankWhenFormattingIsNotAllowed() throws Exception {
        LoopDevice d = fx.loop(64 * MIB);
        assertRefusedUntouched(d.device(), dir.resolve("mnt/data"), false, d.device() + " is blank (no signature, and its"
                + " first and last MiB are all zeros) and the request does not allow formatting (kiln mount --format, or"
                + " format: true in kiln.volumes.mounts); nothing was written");
    }

    @Test
    void mountsAnExistingExt4FilesystemUntouchedWithItsFilesByteForByte() throws Exception {
        LoopDevice d = fx.loop(64 * MIB);
        byte[] content = writeWithOwnFilesystem(d.device(), "ext4");
        Path mp = dir.resolve("mnt/music");
        MountResult r = volumes.mount(spec(d.device(), mp, true));
        assertFalse(r.formatted(), "never formats a filesystem that has data");
        assertEquals(0, fx.calls("mkfs"));
        assertEquals(1, fx.calls("fsck"), "ext4 is checked with fsck -a before mounting");
        assertArrayEquals(content, Files.readAllBytes(mp.resolve("album/01-track.wav")));
    }

    @Test
    void mountsAnExistingXfsFilesystemUntouchedWithItsFilesByteForByte() throws Exception {
        LoopDevice d = fx.loop(320 * MIB);
        byte[] content = writeWithOwnFilesystem(d.device(), "xfs");
        Path mp = dir.resolve("mnt/music");
        MountResult r = volumes.mount(spec(d.device(), mp, Filesystem.XFS, true));
        assertFalse(r.formatted());
        assertEquals(0, fx.calls("mkfs"));
        assertArrayEquals(content, Files.readAllBytes(mp.resolve("album/01-track.wav")));
    }

    @Test
    void refusesAGptPartitionedDeviceWritingNothing() throws Exception {
        LoopDevice d = fx.loop(64 * MIB);
        FormatDeciderTest.gpt(d.device());
        assertRefusedUntouched(d.device(), dir.resolve("mnt/data"), true, "refusing to use " + d.device()
                + ": found a gpt partition table; it is neither provably blank nor a recognised filesystem, so it was not"
                + " formatted or mounted; nothing was written");
    }

    @Test
    void refusesALuksDeviceWritingNothing() throws Exception {
        LoopDevice d = fx.loop(64 * MIB);
        FormatDeciderTest.luks(d.device());
        assertRefusedUntouched(d.device(), dir.resolve("mnt/data"), true, "refusing to use " + d.device()
                + ": found a LUKS header (an encrypted volume); it is neither provably blank nor a recognised filesystem,"
                + " so it was not formatted or mounted; nothing was written");
    }

    @Test
    void refusesRandomDataWritingNothing() throws Exception {
        LoopDevice d = fx.loop(64 * MIB);
        FormatDeciderTest.random(d.device(), 0, 64 * MIB);
        assertRefusedUntouched(d.device(), dir.resolve("mnt/data"), true, "refusing to use " + d.device()
                + ": found no signature, but its first MiB is not all zeros (unrecognised or random data); it is neither"
                + " provably blank nor a recognised filesystem, so it was not formatted or mounted; nothing was written");
    }

    @Test
    void refusesAnUnreadableDeviceWithoutCallingMkfs() throws Exception {
        UnreadableDevice d = fx.unreadable(16 * MIB);
        Path mp = dir.resolve("mnt/data");
        VolumeRefusedException e = assertThrows(VolumeRefusedException.class, () -> volumes.mount(spec(d.device(), mp, true)));
        assertEquals("refusing to use " + d.device() + ": found no signature, but it cannot be read (Input/output error);"
                + " it is neither provably blank nor a recognised filesystem, so it was not formatted or mounted; nothing was"
                + " written", e.getMessage());
        assertEquals(0, fx.calls("mkfs"));
        assertEquals(0, fx.calls("mount"));
    }

    @Test
    void refusesAFilesystemOtherThanTheRequestedOne() throws Exception {
        LoopDevice d = fx.loop(320 * MIB);
        writeWithOwnFilesystem(d.device(), "xfs");
        assertRefusedUntouched(d.device(), dir.resolve("mnt/data"), true, d.device() + " has an xfs filesystem, but ext4"
                + " was requested; it was not formatted or mounted; nothing was written");
    }

    @Test
    void mountingAgainAsRequestedDoesNothing() throws Exception {
        LoopDevice d = fx.loop(64 * MIB);
        Path mp = dir.resolve("mnt/data");
        volumes.mount(spec(d.device(), mp, true));
        MountResult again = volumes.mount(spec(d.device(), mp, true));
        assertTrue(again.alreadyMounted());
        assertFalse(again.formatted());
        assertEquals(1, fx.calls("mkfs"));
        assertEquals(1, fx.calls("mount"));
        assertEquals(1, new MountTable().read().stream().filter(e -> e.mountPoint().equals(mp)).count());
    }

    @Test
    void refusesToRemountAMountedVolumeWithOtherOptions() throws Exception {
        LoopDevice d = fx.loop(64 * MIB);
        Path mp = dir.resolve("mnt/data");
        volumes.mount(spec(d.device(), mp, true));
        VolumeRefusedException e = assertThrows(VolumeRefusedException.class, () -> volumes.mount(new MountSpec(
                new VolumeRef("", d.device().toString()), mp, Filesystem.EXT4, true, false, false, false, "", null, null, null)));
        assertTrue(e.getMessage().startsWith(d.device() + " is already mounted at " + mp + " with options "), e.getMessage());
        assertTrue(e.getMessage().endsWith(", not the requested ro,nodev,nosuid; unmount it first to change them; nothing"
                + " was written"), e.getMessage());
    }

    @Test
    void refusesAMountPointWhereSomethingElseIsMounted() throws Exception {
        LoopDevice a = fx.loop(64 * MIB);
        LoopDevice b = fx.loop(64 * MIB);
        Path mp = dir.resolve("mnt/data");
        volumes.mount(spec(a.device(), mp, true));
        VolumeRefusedException e = assertThrows(VolumeRefusedException.class, () -> volumes.mount(spec(b.device(), mp, true)));
        assertEquals("mount point " + mp + " is in use: " + a.device() + " (ext4) is mounted there, not " + b.device()
                + "; nothing was written", e.getMessage());
        assertEquals(1, fx.calls("mkfs"), "the second device was not formatted");
    }

    @Test
    void refusesAMountPointThatIsNotEmpty() throws Exception {
        LoopDevice d = fx.loop(64 * MIB);
        Path mp = Files.createDirectories(dir.resolve("mnt/data"));
        Files.writeString(mp.resolve("notes.txt"), "written before the volume was mounted");
        assertRefusedUntouched(d.device(), mp, true, "mount point " + mp + " is not empty (1 entry); mounting over it would"
                + " hide them; nothing was written");
    }

    @Test
    void refusesSystemDirectoriesAndTheStateDirectory() throws Exception {
        LoopDevice d = fx.loop(64 * MIB);
        assertEquals("refusing to mount over /var: it belongs to the system; choose a path such as /mnt/NAME or /data",
                assertThrows(IllegalArgumentException.class, () -> volumes.mount(spec(d.device(), Path.of("/var"), true)))
                        .getMessage());
        assertEquals("mounting at " + dir + " would hide the agent's state directory " + fx.state
                        + "; choose another mount point; nothing was written",
                assertThrows(VolumeRefusedException.class, () -> volumes.mount(spec(d.device(), dir, true))).getMessage());
        assertEquals(0, fx.calls("mkfs"));
    }

    @Test
    void mountsWithTheSeedsOptionsForSourcesAndBuilds() throws Exception {
        LoopDevice sources = fx.loop(64 * MIB);
        LoopDevice builds = fx.loop(64 * MIB);
        writeWithOwnFilesystem(sources.device(), "ext4");
        Path src = dir.resolve("mnt/sources");
        Path out = dir.resolve("mnt/builds");
        volumes.mount(new MountSpec(new VolumeRef("", sources.device().toString()), src, Filesystem.EXT4, true, true, true,
                false, "", null, null, null));
        volumes.mount(new MountSpec(new VolumeRef("", builds.device().toString()), out, Filesystem.EXT4, false, true, false,
                true, "", null, null, null));
        assertTrue(mounted(src).orElseThrow().options().containsAll(Set.of("ro", "noatime", "nodev", "noexec", "nosuid")));
        assertTrue(mounted(out).orElseThrow().options().containsAll(Set.of("rw", "noexec", "nosuid", "nodev")));
        assertThrows(java.nio.file.FileSystemException.class, () -> Files.writeString(src.resolve("x"), "x"));
    }

    @Test
    void growsTheFilesystemWhenTheVolumeWasEnlarged() throws Exception {
        LoopDevice d = fx.loop(64 * MIB);
        writeWithOwnFilesystem(d.device(), "ext4");
        try (RandomAccessFile raf = new RandomAccessFile(d.backingFile().toFile(), "rw")) {
            raf.setLength(128 * MIB); // the EBS volume was modified to a larger size
        }
        d.refreshCapacity();
        Path mp = dir.resolve("mnt/data");
        MountResult r = volumes.mount(spec(d.device(), mp, false));
        assertTrue(r.grown());
        assertTrue(Files.getFileStore(mp).getTotalSpace() > 100 * MIB, "ext4 fills the 128 MiB volume");
        assertEquals(0, fx.calls("mkfs"));
    }

    @Test
    void growsAnXfsFilesystemOnlineWhenTheVolumeWasEnlarged() throws Exception {
        LoopDevice d = fx.loop(320 * MIB);
        writeWithOwnFilesystem(d.device(), "xfs");
        try (RandomAccessFile raf = new RandomAccessFile(d.backingFile().toFile(), "rw")) {
            raf.setLength(480 * MIB);
        }
        d.refreshCapacity();
        Path mp = dir.resolve("mnt/data");
        MountResult r = volumes.mount(spec(d.device(), mp, Filesystem.XFS, false));
        assertTrue(r.grown());
        assertTrue(Files.getFileStore(mp).getTotalSpace() > 400 * MIB, "xfs fills the 480 MiB volume");
    }

    @Test
    void refusesToMountAnExt4FilesystemThatFsckCannotRepairAutomatically() throws Exception {
        LoopDevice d = fx.loop(64 * MIB);
        sh("mkfs.ext4", "-q", d.device().toString());
        // Break the root directory and mark the filesystem as having errors, as a crash might.
        ProcessBuilder pb = new ProcessBuilder("debugfs", "-w", "-f", "-", d.device().toString()).redirectErrorStream(true);
        pb.environment().put("PATH", "/usr/sbin:/usr/bin:/sbin:/bin");
        Process p = pb.start();
        p.getOutputStream().write("clri <2>\nssv state 2\n".getBytes(StandardCharsets.US_ASCII));
        p.getOutputStream().close();
        p.getInputStream().readAllBytes();
        assertEquals(0, p.waitFor());
        Path mp = dir.resolve("mnt/data");
        VolumeRefusedException e = assertThrows(VolumeRefusedException.class, () -> volumes.mount(spec(d.device(), mp, true)));
        assertTrue(e.getMessage().startsWith("fsck.ext4 -a found problems on " + d.device() + " that it could not repair"
                + " automatically (exit 4: "), e.getMessage());
        assertTrue(e.getMessage().contains("UNEXPECTED INCONSISTENCY; RUN fsck MANUALLY."), e.getMessage());
        assertTrue(e.getMessage().endsWith("); it was not mounted; check it by hand with e2fsck"), e.getMessage());
        assertEquals(0, fx.calls("mkfs"), "a damaged filesystem is never formatted");
        assertEquals(0, fx.calls("mount"));
    }

    @Test
    void mountsAVolumeByItsEbsIdAndRefusesAStaleHintWithoutWriting() throws Exception {
        LoopDevice a = fx.loop(64 * MIB);
        LoopDevice b = fx.loop(64 * MIB);
        fx.showAsEbs(a.device(), "vol-0aaaaaaaaaaaaaaa1");
        fx.showAsEbs(b.device(), "vol-0bbbbbbbbbbbbbbb2");
        Path mp = dir.resolve("mnt/data");
        String before = Fixture.sha256(b.device());
        // The hint names b's device, but the request is for volume a: a stale /dev link.
        VolumeRefusedException e = assertThrows(VolumeRefusedException.class, () -> volumes.mount(new MountSpec(
                new VolumeRef("vol-0aaaaaaaaaaaaaaa1", b.device().toString()), mp, Filesystem.EXT4, false, false, false,
                true, "", null, null, null)));
        assertEquals("device " + b.device() + " points at " + b.device().getFileName() + ", which is volume"
                + " vol-0bbbbbbbbbbbbbbb2, not the requested vol-0aaaaaaaaaaaaaaa1; the link is stale or the hint is wrong;"
                + " nothing was written", e.getMessage());
        assertEquals(0, fx.calls("mkfs"));
        assertEquals(before, Fixture.sha256(b.device()));

        MountResult r = volumes.mount(new MountSpec(new VolumeRef("vol-0aaaaaaaaaaaaaaa1", ""), mp, Filesystem.EXT4, false,
                false, false, true, "", null, null, null));
        assertTrue(r.formatted());
        assertEquals("vol-0aaaaaaaaaaaaaaa1", r.volume().volumeId());
        assertEquals(a.device().toString(), r.volume().device());
        assertTrue(mounted(mp).isPresent());
    }

    @Test
    void reportsAVolumeThatNeverAppearsAfterTheWait() {
        VolumeNotFoundException e = assertThrows(VolumeNotFoundException.class, () -> volumes.mount(new MountSpec(
                new VolumeRef("vol-0eeeeeeeeeeeeeee5", ""), dir.resolve("mnt/data"), Filesystem.EXT4, false, false, false,
                true, "", Duration.ofSeconds(1), null, null)));
        assertEquals("volume vol-0eeeeeeeeeeeeeee5 is not attached: no NVMe device with model 'Amazon Elastic Block Store'"
                + " and serial 'vol0eeeeeeeeeeeeeee5' appeared within 1s", e.getMessage());
    }

    @Test
    void assemblesTheVibesOverlaySoOnlyOutputsLandOnTheBuildsVolume() throws Exception {
        byte[] master = mountSourcesAndBuilds();
        Path src = dir.resolve("mnt/sources");
        Path out = dir.resolve("mnt/builds");
        Path tree = dir.resolve("work/vibes");
        MountResult r = volumes.mount(new MountSpec(null, tree, null, false, true, false, false, "", null,
                src.resolve("album"), out.resolve("vibes")));
        assertEquals("overlay", r.volume().filesystem());
        assertEquals("overlay", mounted(tree).orElseThrow().type());
        assertArrayEquals(master, Files.readAllBytes(tree.resolve("01-track.wav")), "sources show through");
        Files.writeString(tree.resolve("01-track.flac"), "encoded");
        Files.writeString(tree.resolve("01-track.wav"), "changed in the work tree");
        assertEquals("encoded", Files.readString(out.resolve("vibes/01-track.flac")), "outputs land on the builds volume");
        assertArrayEquals(master, Files.readAllBytes(src.resolve("album/01-track.wav")), "the sources volume is untouched");
        assertEquals(fx.owner().uid(), ownerOf(out.resolve("vibes")), "the build user owns the upper layer");
        assertTrue(volumes.mount(new MountSpec(null, tree, null, false, true, false, false, "", null,
                src.resolve("album"), out.resolve("vibes"))).alreadyMounted());
        List<VolumeInfo> listed = volumes.list();
        assertTrue(listed.stream().anyMatch(v -> v.device().equals("overlay") && tree.equals(v.mountPoint())), listed.toString());
    }

    @Test
    void anUpperDirectorySwappedForALinkWhileTheOverlayIsMountedIsRefusedAndUnmounted() throws Exception {
        mountSourcesAndBuilds();
        Path src = dir.resolve("mnt/sources");
        Path out = dir.resolve("mnt/builds");
        Path tree = dir.resolve("work/vibes");
        Files.createDirectories(out.resolve("vibes"));
        // Root's, on the builds volume (the kernel wants upper and work on one filesystem): where a
        // build would like root's overlay to write.
        Path elsewhere = out.resolve("lost+found");
        assertEquals(0, Files.getAttribute(elsewhere, "unix:uid"));
        fx.beforeMount = () -> {
            try {
                Files.move(out.resolve("vibes"), out.resolve("vibes.moved"));
                Files.createSymbolicLink(out.resolve("vibes"), elsewhere);
            } catch (IOException e) {
                throw new java.io.UncheckedIOException(e);
            }
        };
        VolumeRefusedException e = assertThrows(VolumeRefusedException.class, () -> volumes.mount(new MountSpec(null, tree,
                null, false, true, false, false, "", null, src.resolve("album"), out.resolve("vibes"))));
        fx.beforeMount = () -> { };
        assertTrue(e.getMessage().contains("was replaced while it was being mounted"), e.getMessage());
        assertTrue(e.getMessage().contains("it was unmounted again; nothing is mounted"), e.getMessage());
        assertTrue(mounted(tree).isEmpty(), "nothing is mounted at the work tree");
        try (var left = Files.list(elsewhere)) {
            assertEquals(List.of(), left.toList(), "nothing was left in root's directory");
        }
    }

    /**
     * The seed's two volumes: a sources volume holding album/01-track.wav mounted read-only at
     * mnt/sources, and a new builds volume (formatted) at mnt/builds; returns the track's bytes.
     */
    byte[] mountSourcesAndBuilds() throws Exception {
        LoopDevice sources = fx.loop(64 * MIB);
        LoopDevice builds = fx.loop(64 * MIB);
        byte[] master = writeWithOwnFilesystem(sources.device(), "ext4");
        volumes.mount(new MountSpec(new VolumeRef("", sources.device().toString()), dir.resolve("mnt/sources"), Filesystem.EXT4,
                true, true, true, false, "", null, null, null));
        volumes.mount(new MountSpec(new VolumeRef("", builds.device().toString()), dir.resolve("mnt/builds"), Filesystem.EXT4,
                false, true, false, true, "", null, null, null));
        return master;
    }

    /**
     * Makes a filesystem and writes album/01-track.wav on it with the test's own tools (not Kiln's),
     * then unmounts it; returns the file's bytes.
     */
    byte[] writeWithOwnFilesystem(Path device, String type) throws Exception {
        sh("mkfs." + type, "-q", device.toString());
        Path tmp = Files.createDirectories(dir.resolve("prepare-" + device.getFileName()));
        sh("mount", device.toString(), tmp.toString());
        byte[] content = ("RIFF" + "x".repeat(5000)).getBytes(StandardCharsets.US_ASCII);
        try {
            Files.createDirectories(tmp.resolve("album"));
            Files.write(tmp.resolve("album/01-track.wav"), content);
        } finally {
            sh("umount", tmp.toString());
        }
        return content;
    }
}
