package dev.kiln.agent.schedule;

import dev.kiln.agent.build.BuildUser;
import dev.kiln.agent.build.OsProcessLauncher;
import dev.kiln.agent.volume.TestVolumes;
import dev.kiln.testkit.MotoServer;
import dev.kiln.testkit.Prerequisites;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import software.amazon.awssdk.services.ec2.Ec2Client;
import software.amazon.awssdk.services.ec2.model.ResourceType;
import software.amazon.awssdk.services.ec2.model.Snapshot;
import software.amazon.awssdk.services.ec2.model.Tag;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The agent's side of scheduled snapshots on EC2: it calls CreateSnapshot and DeleteSnapshot
 * itself, with the SDK's default credentials, against moto_server on loopback (the endpoint
 * override of kiln.snapshots.ec2-endpoint). The volume is a real loop device that the fake sysfs
 * shows as the EBS volume moto made, so the freeze, its identity check and the thaw are real.
 */
class Ec2ScheduleTest {

    static final long MIB = 1L << 20;

    @TempDir
    Path dir;

    MotoServer moto;
    TestVolumes volumes;
    ScheduleRunner runner;
    Ec2SnapshotBackend backend;
    Ec2Client ec2;
    String instance;
    String volume;

    @BeforeEach
    void setUp() throws Exception {
        Prerequisites.requireRoot("loop devices and mount");
        moto = MotoServer.start();
        ec2 = moto.ec2Client();
        String image = ec2.describeImages(r -> r.maxResults(5)).images().get(0).imageId();
        instance = ec2.runInstances(r -> r.imageId(image).minCount(1).maxCount(1)).instances().get(0).instanceId();
        String zone = ec2.describeInstances(r -> r.instanceIds(instance)).reservations().get(0).instances().get(0)
                .placement().availabilityZone();
        volume = ec2.createVolume(c -> c.availabilityZone(zone).size(1).tagSpecifications(t -> t.resourceType(ResourceType.VOLUME)
                .tags(tag("kiln:managed", "true"), tag("kiln:role", "server"), tag("kiln:volume-role", "data"),
                        tag("kiln:collection", "notes")))).volumeId();
        ec2.attachVolume(a -> a.volumeId(volume).instanceId(instance).device("/dev/sdf"));
        volumes = new TestVolumes(dir.resolve("t"));
        Path mp = dir.resolve("t/mnt/data");
        Files.createDirectories(mp);
        volumes.mountNewImage(dir.resolve("t/data.img"), 64 * MIB, mp, "0:0", volume);
        // The SDK's default chain, as on an instance; here its system-property link carries moto's dummy keys.
        System.setProperty("aws.accessKeyId", "testing");
        System.setProperty("aws.secretAccessKey", "testing");
        backend = new Ec2SnapshotBackend(MotoServer.REGION.id(), moto.endpoint(), instance, Duration.ofSeconds(30));
        runner = new ScheduleRunner(new ScheduleStore(dir.resolve("state")), volumes.service(), backend, "",
                new HookCommand(new OsProcessLauncher(), () -> BuildUser.resolve(null), Duration.ofSeconds(30)),
                Clock.systemUTC(), Duration.ofSeconds(30), Duration.ZERO, Duration.ofSeconds(1));
    }

    @AfterEach
    void tearDown() throws Exception {
        System.clearProperty("aws.accessKeyId");
        System.clearProperty("aws.secretAccessKey");
        if (runner != null) {
            runner.close();
        }
        if (backend != null) {
            backend.close();
        }
        if (volumes != null) {
            volumes.close();
        }
        if (moto != null) {
            moto.close();
        }
    }

    static Tag tag(String k, String v) {
        return Tag.builder().key(k).value(v).build();
    }

    static Map<String, String> tags(Snapshot s) {
        return s.tags().stream().collect(Collectors.toMap(Tag::key, Tag::value));
    }

    @Test
    void theAgentCallsCreateSnapshotWithKilnsTagsAndPrunesOnlyKilnsOwn() throws Exception {
        String foreign = ec2.createSnapshot(c -> c.volumeId(volume).description("by hand").tagSpecifications(t -> t
                .resourceType(ResourceType.SNAPSHOT).tags(tag("kiln:volume-role", "data")))).snapshotId();
        runner.set(new ScheduleSpec("data", Duration.ofHours(24), "03:00", 2, "", ""));

        List<String> made = new java.util.ArrayList<>();
        for (int i = 0; i < 3; i++) {
            // moto keeps start times to the second: runs in different seconds keep "newest" unambiguous.
            long second = java.time.Instant.now().getEpochSecond();
            while (java.time.Instant.now().getEpochSecond() == second) {
                Thread.sleep(20);
            }
            ScheduleState s = runner.runNow("data");
            assertTrue(s.lastOk(), s.lastResult());
            made.add(s.lastSnapshot());
        }

        List<Snapshot> left = ec2.describeSnapshots(r -> r.ownerIds("self")).snapshots().stream()
                .filter(s -> volume.equals(s.volumeId())).toList();
        assertEquals(List.of(foreign, made.get(1), made.get(2)).stream().sorted().toList(),
                left.stream().map(Snapshot::snapshotId).sorted().toList(), "the newest 2 of Kiln's and the one made by hand");
        Map<String, String> t = tags(left.stream().filter(s -> s.snapshotId().equals(made.get(2))).findFirst().orElseThrow());
        assertEquals("true", t.get("kiln:managed"));
        assertEquals("data", t.get("kiln:volume-role"));
        assertEquals("notes", t.get("kiln:collection"));
        assertEquals(volume, t.get("kiln:source-volume"));
        assertEquals(instance, t.get("kiln:source-instance"));
        assertEquals("server", t.get("kiln:role"));
        assertTrue(volumes.service().frozenUntil(dir.resolve("t/mnt/data")).isEmpty(), "thawed");
    }

    @Test
    void aVolumeNotAttachedToThisInstanceIsRefusedBeforeAnythingIsFrozen() throws Exception {
        // This agent's instance is another one than the volume is attached to.
        runner.close();
        backend.close();
        backend = new Ec2SnapshotBackend(MotoServer.REGION.id(), moto.endpoint(), "i-0123456789abcdef0", Duration.ofSeconds(30));
        runner = new ScheduleRunner(new ScheduleStore(dir.resolve("state")), volumes.service(), backend, "",
                new HookCommand(new OsProcessLauncher(), () -> BuildUser.resolve(null), Duration.ofSeconds(30)),
                Clock.systemUTC(), Duration.ofSeconds(30), Duration.ZERO, Duration.ofSeconds(1));

        RuntimeException refused = org.junit.jupiter.api.Assertions.assertThrows(dev.kiln.agent.volume.VolumeRefusedException.class,
                () -> runner.set(new ScheduleSpec("data", Duration.ofHours(24), "", 2, "", "")));

        assertTrue(refused.getMessage().contains("is not attached to this instance (i-0123456789abcdef0); nothing was scheduled"),
                refused.getMessage());
        assertFalse(runner.list().iterator().hasNext(), "nothing was scheduled");
        assertEquals(List.of(), ec2.describeSnapshots(r -> r.ownerIds("self")).snapshots().stream()
                .filter(s -> volume.equals(s.volumeId())).toList());
    }
}
