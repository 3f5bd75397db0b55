package dev.kiln.agent.volume;

import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Identity against a fake sysfs and /dev tree laid out as on a Nitro instance: NVMe namespaces
 * whose controllers carry the EBS model and the volume id as serial, /dev/sdX and by-id links.
 */
class SysfsVolumesTest {

    static final String A = "vol-0aaaaaaaaaaaaaaa1";
    static final String B = "vol-0bbbbbbbbbbbbbbb2";

    @TempDir
    Path dir;

    Path sys;
    Path dev;

    /** A fake clock that the fake sleeper moves forward. */
    final class FakeTime extends Clock implements SysfsVolumes.Sleeper {
        Instant now = Instant.parse("2026-11-22T00:00:00Z");
        final List<Duration> sleeps = new ArrayList<>();
        Runnable onSleep = () -> { };

        @Override
        public java.time.ZoneId getZone() {
            return ZoneOffset.UTC;
        }

        @Override
        public Clock withZone(java.time.ZoneId zone) {
            return this;
        }

        @Override
        public Instant instant() {
            return now;
        }

        @Override
        public void sleep(Duration d) {
            sleeps.add(d);
            now = now.plus(d);
            onSleep.run();
        }
    }

    FakeTime time = new FakeTime();
    SysfsVolumes volumes;

    @BeforeEach
    void setUp() throws IOException {
        sys = Files.createDirectories(dir.resolve("sys/block"));
        dev = Files.createDirectories(dir.resolve("dev"));
        volumes = new SysfsVolumes(dir.resolve("sys"), dev, time, time, Duration.ofMillis(500));
        nvme("nvme0n1", "259:0", SysfsVolumes.EBS_MODEL, "vol0123456789abcdef0"); // the root volume
        nvme("nvme1n1", "259:1", SysfsVolumes.EBS_MODEL, A.replace("-", ""));
        nvme("nvme2n1", "259:2", SysfsVolumes.EBS_MODEL, B.replace("-", ""));
        nvme("nvme3n1", "259:3", "Amazon EC2 NVMe Instance Storage", "AWS1234567890ABCDEF");
    }

    /** An NVMe namespace with its controller's model and serial, padded as the kernel pads them. */
    void nvme(String name, String number, String model, String serial) throws IOException {
        Path ns = Files.createDirectories(sys.resolve(name));
        Files.writeString(ns.resolve("dev"), number + "\n");
        Files.writeString(ns.resolve("size"), "16777216\n");
        Path ctrl = Files.createDirectories(dir.resolve("sys/devices/" + name.replace("n1", "")));
        Files.writeString(ctrl.resolve("model"), String.format("%-40s\n", model));
        Files.writeString(ctrl.resolve("serial"), String.format("%-20s\n", serial));
        Files.createSymbolicLink(ns.resolve("device"), ctrl);
        Files.createFile(dev.resolve(name));
    }

    void link(String linkName, String target) throws IOException {
        Path link = dev.resolve(linkName);
        Files.createDirectories(link.getParent());
        Files.createSymbolicLink(link, link.getParent().relativize(dev.resolve(target)));
    }

    @Test
    void findsAnEbsVolumeByTheSerialOfItsNvmeController() {
        BlockDevice d = volumes.find(new VolumeRef(A, ""), Duration.ZERO);
        assertEquals(new BlockDevice("nvme1n1", dev.resolve("nvme1n1"), "259:1", 16777216L * 512, A), d);
    }

    @Test
    void listsEveryDiskWithItsVolumeIdAndNoneForInstanceStorage() {
        List<String> ids = volumes.list().stream().map(d -> d.name() + "=" + d.volumeId()).toList();
        assertEquals(List.of("nvme0n1=vol-0123456789abcdef0", "nvme1n1=" + A, "nvme2n1=" + B, "nvme3n1="), ids);
    }

    @Test
    void followsAHintThatLeadsToTheRequestedVolume() throws IOException {
        link("sdf", "nvme1n1");
        link("disk/by-id/nvme-Amazon_Elastic_Block_Store_" + A.replace("-", ""), "nvme1n1");
        assertEquals("nvme1n1", volumes.find(new VolumeRef(A, "/dev/sdf"), Duration.ZERO).name());
        assertEquals("nvme1n1", volumes.find(new VolumeRef(A, "/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_"
                + A.replace("-", "")), Duration.ZERO).name());
    }

    @Test
    void refusesAStaleLinkToAnotherVolumeNamingBothIds() throws IOException {
        link("sdf", "nvme2n1"); // left over from an earlier attachment: now it is volume B
        VolumeRefusedException e = assertThrows(VolumeRefusedException.class,
                () -> volumes.find(new VolumeRef(A, "/dev/sdf"), Duration.ofMinutes(2)));
        assertEquals("device /dev/sdf points at nvme2n1, which is volume " + B + ", not the requested " + A
                + "; the link is stale or the hint is wrong; nothing was written", e.getMessage());
        assertEquals(List.of(), time.sleeps, "refused at once, without waiting");
    }

    @Test
    void refusesAHintToADeviceThatIsNotAnEbsVolume() throws IOException {
        link("sdg", "nvme3n1");
        VolumeRefusedException e = assertThrows(VolumeRefusedException.class,
                () -> volumes.find(new VolumeRef(A, "/dev/sdg"), Duration.ZERO));
        assertEquals("device /dev/sdg points at nvme3n1, which does not identify itself as an EBS volume (no NVMe model"
                + " 'Amazon Elastic Block Store' and serial), not the requested " + A
                + "; the link is stale or the hint is wrong; nothing was written", e.getMessage());
    }

    @Test
    void usesTheVolumeIdWhenTheHintedNameDoesNotExist() {
        // Nitro instances have no /dev/sdf unless a udev rule made it; the id is what counts.
        assertEquals("nvme2n1", volumes.find(new VolumeRef(B, "/dev/sdf"), Duration.ZERO).name());
    }

    @Test
    void refusesAHintThatIsAPartition() throws IOException {
        Files.createFile(dev.resolve("nvme1n1p1"));
        VolumeRefusedException e = assertThrows(VolumeRefusedException.class,
                () -> volumes.find(new VolumeRef("", "/dev/nvme1n1p1"), Duration.ZERO));
        assertEquals("device /dev/nvme1n1p1 is nvme1n1p1, which " + sys + " does not list as a whole disk (a partition,"
                + " or not a block device); Kiln uses whole volumes; nothing was written", e.getMessage());
    }

    @Test
    void waitsForAVolumeThatIsAttachedLate() {
        String late = "vol-0ccccccccccccccc3";
        time.onSleep = () -> {
            if (time.sleeps.size() == 4) {
                try {
                    nvme("nvme4n1", "259:4", SysfsVolumes.EBS_MODEL, late.replace("-", ""));
                } catch (IOException e) {
                    throw new RuntimeException(e);
                }
            }
        };
        assertEquals("nvme4n1", volumes.find(new VolumeRef(late, ""), Duration.ofMinutes(2)).name());
        assertEquals(4, time.sleeps.size());
    }

    @Test
    void reportsAMissingVolumeAfterTheTimeoutAndStopsLooking() {
        String missing = "vol-0ddddddddddddddd4";
        VolumeNotFoundException e = assertThrows(VolumeNotFoundException.class,
                () -> volumes.find(new VolumeRef(missing, ""), Duration.ofSeconds(3)));
        assertEquals("volume " + missing + " is not attached: no NVMe device with model 'Amazon Elastic Block Store'"
                + " and serial 'vol0ddddddddddddddd4' appeared within 3s", e.getMessage());
        assertEquals(6, time.sleeps.size(), "3 s in 500 ms steps, then it gives up: " + time.sleeps);
    }

    @Test
    void reportsAMissingDeviceByItsPath() {
        VolumeNotFoundException e = assertThrows(VolumeNotFoundException.class,
                () -> volumes.find(new VolumeRef("", "/dev/xvdz"), Duration.ofSeconds(1)));
        assertEquals("device /dev/xvdz did not appear within 1s", e.getMessage());
    }

    @Test
    void verifyRefusesWhenAnotherVolumeNowSitsUnderTheSameName() throws IOException {
        BlockDevice found = volumes.find(new VolumeRef(A, ""), Duration.ZERO);
        // Detached and replaced between the decision and mkfs.
        Files.writeString(dir.resolve("sys/devices/nvme1/serial"), B.replace("-", "") + "\n");
        VolumeRefusedException e = assertThrows(VolumeRefusedException.class, () -> volumes.verify(found, new VolumeRef(A, "")));
        assertEquals("the identity of " + dev.resolve("nvme1n1") + " changed: it was volume " + A + ", device 259:1,"
                + " now it is volume " + B + ", device 259:1; nothing was written", e.getMessage());
    }

    @Test
    void verifyRefusesWhenTheHintMovedToAnotherDevice() throws IOException {
        link("sdf", "nvme1n1");
        BlockDevice found = volumes.find(new VolumeRef(A, "/dev/sdf"), Duration.ZERO);
        Files.delete(dev.resolve("sdf"));
        link("sdf", "nvme2n1");
        VolumeRefusedException e = assertThrows(VolumeRefusedException.class,
                () -> volumes.verify(found, new VolumeRef(A, "/dev/sdf")));
        assertTrue(e.getMessage().startsWith("device /dev/sdf now points at nvme2n1 (volume " + B), e.getMessage());
    }

    @Test
    void rejectsMalformedIdsAndDevicePaths() {
        assertEquals("'vol-xyz' is not an EBS volume id (vol- and 8 or 17 hex digits)", assertThrows(
                IllegalArgumentException.class, () -> volumes.find(new VolumeRef("vol-xyz", ""), Duration.ZERO)).getMessage());
        assertEquals("device 'sdf' must be a path under /dev, e.g. /dev/sdf or /dev/loop3", assertThrows(
                IllegalArgumentException.class, () -> volumes.find(new VolumeRef("", "sdf"), Duration.ZERO)).getMessage());
        assertEquals("device '/dev/../etc/passwd' must be a path under /dev, e.g. /dev/sdf or /dev/loop3", assertThrows(
                IllegalArgumentException.class, () -> volumes.find(new VolumeRef("", "/dev/../etc/passwd"), Duration.ZERO))
                .getMessage());
        assertEquals("a volume id (vol-...) or a device path (/dev/...) is required", assertThrows(
                IllegalArgumentException.class, () -> volumes.find(new VolumeRef("", ""), Duration.ZERO)).getMessage());
    }
}
