package dev.kiln.e2e;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import dev.kiln.controller.pki.FleetCa;
import dev.kiln.testkit.FreePorts;
import dev.kiln.testkit.LoopDevice;
import dev.kiln.testkit.MetadataMock;
import dev.kiln.testkit.MotoServer;
import dev.kiln.testkit.Prerequisites;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import software.amazon.awssdk.services.ec2.Ec2Client;
import software.amazon.awssdk.services.ec2.model.ResourceType;
import software.amazon.awssdk.services.ec2.model.Snapshot;
import software.amazon.awssdk.services.ec2.model.Tag;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A kiln-agent process in ec2 mode runs a schedule from its user data (kiln.schedules) and calls
 * CreateSnapshot itself: identity and region from IMDSv2 (amazon-ec2-metadata-mock), credentials
 * from the SDK's default chain (here its environment link), EC2 at moto_server on loopback
 * (kiln.snapshots.ec2-endpoint). The volume is a loop device that a fake sysfs shows as the EBS
 * volume moto made, so the agent's boot mount, freeze and thaw are real.
 */
class Ec2ScheduledSnapshotTest {

    @TempDir
    Path dir;

    static Tag tag(String k, String v) {
        return Tag.builder().key(k).value(v).build();
    }

    @Test
    void theAgentSnapshotsItsVolumeOnTheScheduleFromItsUserData() throws Exception {
        Prerequisites.requireRoot("loop devices and mount");
        Files.setPosixFilePermissions(dir, java.nio.file.attribute.PosixFilePermissions.fromString("rwxr-xr-x"));
        Kiln kiln = new Kiln(dir.resolve("home"));
        assertEquals(0, kiln.run("init").exitCode());
        FleetCa ca = FleetCa.load(kiln.configDir().resolve("fleet-ca.crt"), kiln.configDir().resolve("fleet-ca.key"));
        try (MotoServer moto = MotoServer.start()) {
            Ec2Client ec2 = moto.ec2Client();
            String image = ec2.describeImages(r -> r.maxResults(5)).images().get(0).imageId();
            String instance = ec2.runInstances(r -> r.imageId(image).minCount(1).maxCount(1)).instances().get(0).instanceId();
            String zone = ec2.describeInstances(r -> r.instanceIds(instance)).reservations().get(0).instances().get(0)
                    .placement().availabilityZone();
            String volume = ec2.createVolume(c -> c.availabilityZone(zone).size(1).tagSpecifications(t -> t
                    .resourceType(ResourceType.VOLUME).tags(tag("kiln:managed", "true"), tag("kiln:role", "server"),
                            tag("kiln:volume-role", "data"), tag("kiln:collection", "notes")))).volumeId();
            ec2.attachVolume(a -> a.volumeId(volume).instanceId(instance).device("/dev/sdf"));

            try (LoopDevice loop = LoopDevice.create(dir, 64L << 20)) {
                run("mkfs.ext4", "-q", "-F", loop.device().toString());
                Path sys = showAsEbs(loop.device(), volume);
                Path mp = dir.resolve("mnt/data");
                int port = FreePorts.loopbackPort();
                String more = String.join("\n",
                        "  lease:",
                        "    ttl: 1h",
                        "  volumes:",
                        "    sysfs-root: '" + sys + "'",
                        "    mounts:",
                        "      - volume-id: " + volume,
                        "        mount-point: '" + mp + "'",
                        "  snapshots:",
                        "    ec2-endpoint: " + moto.endpoint(),
                        "  schedules:",
                        "    - {role: data, every: 2s, keep: 2}",
                        "");
                try (MetadataMock imds = MetadataMock.builder().instanceId(instance).region(MotoServer.REGION.id())
                        .userData(Ec2ModeTest.userData(ca, instance, port, more)).start()) {
                    Path settings = dir.resolve("agent.yml");
                    Files.writeString(settings, """
                            kiln:
                              mode: ec2
                              state-dir: '%s'
                              grpc:
                                host: 127.0.0.1
                              imds:
                                endpoint: %s
                                timeout: 20s
                            """.formatted(dir.resolve("state"), imds.endpoint()));
                    try (AgentProcess agent = AgentProcess.start(settings, Map.of("AWS_ACCESS_KEY_ID", "testing",
                            "AWS_SECRET_ACCESS_KEY", "testing"))) {
                        assertEquals(port, agent.awaitListening(Duration.ofSeconds(60)));
                        JsonObject s = awaitRuns(kiln, port, 3, agent);
                        assertEquals(0, s.get("failures").getAsInt(), s.toString());
                        String last = s.get("last_snapshot_id").getAsString();
                        List<Snapshot> ours = ec2.describeSnapshots(r -> r.ownerIds("self").filters(f -> f.name("tag:kiln:managed")
                                .values("true"))).snapshots();
                        assertTrue(ours.stream().anyMatch(x -> x.snapshotId().equals(last)), ours.toString());
                        Snapshot made = ours.stream().filter(x -> x.snapshotId().equals(last)).findFirst().orElseThrow();
                        assertEquals(volume, made.volumeId());
                        assertTrue(made.tags().contains(tag("kiln:source-instance", instance)), made.tags().toString());
                        assertTrue(made.tags().contains(tag("kiln:collection", "notes")), made.tags().toString());
                        assertTrue(ours.size() <= 3, "retention keeps 2 (3 while a run is between its create and its prune): " + ours);
                        Files.writeString(mp.resolve("after.txt"), "thawed"); // would block while frozen
                    }
                } finally {
                    if (Files.exists(mp) && new String(Files.readAllBytes(Path.of("/proc/self/mountinfo"))).contains(" " + mp + " ")) {
                        run("umount", mp.toString());
                    }
                }
            }
        }
    }

    /** Polls kiln status until the schedule has made {@code runs} different snapshots (a bound against a hang only). */
    static JsonObject awaitRuns(Kiln kiln, int port, int runs, AgentProcess agent) throws InterruptedException {
        java.util.Set<String> seen = new java.util.HashSet<>();
        Instant giveUp = Instant.now().plus(Duration.ofMinutes(3));
        JsonObject last = null;
        while (Instant.now().isBefore(giveUp)) {
            Kiln.Run st = kiln.run("status", "--agent", "127.0.0.1:" + port, "-o", "json");
            if (st.exitCode() == 0) {
                JsonObject status = JsonParser.parseString(st.out()).getAsJsonObject();
                if (status.has("schedules") && !status.getAsJsonArray("schedules").isEmpty()) {
                    last = status.getAsJsonArray("schedules").get(0).getAsJsonObject();
                    if (!last.get("last_snapshot_id").getAsString().isEmpty()) {
                        seen.add(last.get("last_snapshot_id").getAsString());
                    }
                    if (seen.size() >= runs) {
                        return last;
                    }
                }
            }
            Thread.sleep(250);
        }
        throw new AssertionError("fewer than " + runs + " scheduled snapshots in 3 minutes; last: " + last + "\n" + agent.output());
    }

    /** A fake sysfs that shows the loop device as an EBS volume (NVMe model and serial). */
    Path showAsEbs(Path device, String volumeId) throws Exception {
        String name = device.getFileName().toString();
        Path real = Path.of("/sys/class/block", name).toRealPath();
        Path block = Files.createDirectories(dir.resolve("sys/block").resolve(name).resolve("device"));
        Files.writeString(block.getParent().resolve("dev"), Files.readString(real.resolve("dev")));
        Files.writeString(block.getParent().resolve("size"), Files.readString(real.resolve("size")));
        Files.writeString(block.resolve("model"), "Amazon Elastic Block Store              \n");
        Files.writeString(block.resolve("serial"), volumeId.replace("-", "") + "\n");
        return dir.resolve("sys");
    }

    static void run(String... argv) throws Exception {
        ProcessBuilder pb = new ProcessBuilder(argv).redirectErrorStream(true);
        pb.environment().put("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
        Process p = pb.start();
        String out = new String(p.getInputStream().readAllBytes());
        assertTrue(p.waitFor(60, TimeUnit.SECONDS));
        assertEquals(0, p.exitValue(), String.join(" ", argv) + ": " + out);
    }
}
