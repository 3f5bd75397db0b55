package dev.kiln.e2e;

import dev.kiln.testkit.MotoServer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import software.amazon.awssdk.services.ec2.Ec2Client;
import software.amazon.awssdk.services.ec2.model.ResourceType;
import software.amazon.awssdk.services.ec2.model.Tag;
import software.amazon.awssdk.services.ec2.model.TagSpecification;
import software.amazon.awssdk.services.ec2.model.Volume;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Volumes that outlive instances on EC2, against moto_server (through the {@link Ec2Proxy}, which
 * refuses cross-zone attaches as EC2 does) with real agents booted for the instances
 * ({@link FleetSimulator}): attaching an existing volume in its zone, keeping, flagging unsaved,
 * deleting what is safe when an instance ends or is reaped, `kiln volumes --fleet`,
 * `kiln volume rm`, and --forever.
 */
class Ec2VolumesTest {

    static MotoServer moto;
    static Ec2Proxy proxy;
    static Ec2Client ec2;
    static String subnet;
    static String otherZoneSubnet;
    static String ami;

    @TempDir
    Path dir;

    Kiln kiln;
    FleetSimulator simulator;

    @BeforeAll
    static void startMoto() {
        moto = MotoServer.start();
        ec2 = moto.ec2Client();
        proxy = new Ec2Proxy(moto.endpoint(), ec2).notFoundFor(Duration.ofSeconds(1));
        MotoWorld.sdkCredentials();
        subnet = MotoWorld.loopbackSubnet(ec2, 2, "us-east-1a").subnetId();
        otherZoneSubnet = MotoWorld.loopbackSubnet(ec2, 3, "us-east-1b").subnetId();
        ami = MotoWorld.agentImage(ec2, "kiln-agent-2026-12-07");
    }

    @AfterAll
    static void stopMoto() {
        if (proxy != null) {
            proxy.close();
        }
        if (moto != null) {
            moto.close();
        }
    }

    @BeforeEach
    void setUp() {
        kiln = new Kiln(dir.resolve("home")).env("KILN_EC2_ENDPOINT", proxy.endpoint().toString())
                .env("KILN_REGION", "us-east-1").env("KILN_ADDRESS", "private").env("KILN_PROVIDER", "ec2");
        assertEquals(0, kiln.run("init").exitCode());
        simulator = new FleetSimulator(ec2, dir.resolve("instances"));
    }

    @AfterEach
    void tearDown() throws Exception {
        simulator.close();
        assertEquals(null, proxy.failure(), "the EC2 proxy itself worked");
        MotoWorld.terminateKilnInstances(ec2);
    }

    Volume volume(String id) {
        return ec2.describeVolumes(r -> r.volumeIds(id)).volumes().get(0);
    }

    Map<String, String> tags(Volume v) {
        return v.tags().stream().collect(Collectors.toMap(Tag::key, Tag::value));
    }

    /** The volume of a role that Kiln attached to an instance. */
    String volumeOf(String instance, String role) {
        return ec2.describeVolumes(r -> r.filters(f -> f.name("attachment.instance-id").values(instance),
                        f -> f.name("tag:kiln:volume-role").values(role))).volumes().get(0).volumeId();
    }

    String userData(String instance) {
        String b64 = ec2.describeInstanceAttribute(r -> r.instanceId(instance).attribute("userData")).userData().value();
        return new String(Base64.getDecoder().decode(b64), StandardCharsets.UTF_8);
    }

    String kilnVolume(String zone, String role, boolean managed) {
        List<Tag> t = managed ? List.of(Tag.builder().key("kiln:managed").value("true").build(),
                Tag.builder().key("kiln:volume-role").value(role).build()) : List.of(Tag.builder().key("Name").value(role).build());
        return ec2.createVolume(r -> r.availabilityZone(zone).size(1).tagSpecifications(TagSpecification.builder()
                .resourceType(ResourceType.VOLUME).tags(t).build())).volumeId();
    }

    @Test
    void anExistingVolumeOutsideTheSubnetsZoneOrNotKilnsIsRefusedBeforeAnythingIsCreated() {
        String far = kilnVolume("us-east-1b", "data", true);
        int before = ec2.describeVolumes().volumes().size();
        Kiln.Run launch = kiln.run("launch", "--ami", ami, "--subnet", subnet, "--volume", "data:" + far, "--volume", "cache:1");
        assertEquals(5, launch.exitCode(), launch.toString());
        assertTrue(launch.err().contains("--subnet " + subnet + " is in us-east-1a, but " + far + " is in us-east-1b: an instance"
                + " attaches volumes of its own availability zone only; give a subnet in us-east-1b, or leave out --subnet (the"
                + " launch then picks us-east-1b); nothing was launched"), launch.err());
        assertEquals(before, ec2.describeVolumes().volumes().size(), "no volume was created");
        assertTrue(new dev.kiln.controller.fleet.Ec2Fleet(ec2).active().isEmpty(), "no instance was launched");

        String foreign = kilnVolume("us-east-1a", "data", false);
        Kiln.Run notOurs = kiln.run("launch", "--ami", ami, "--subnet", subnet, "--volume", "data:" + foreign);
        assertEquals(5, notOurs.exitCode(), notOurs.toString());
        assertTrue(notOurs.err().contains(foreign + " is not Kiln's (no kiln:managed=true tag)"), notOurs.err());
        Kiln.Run rm = kiln.run("volume", "rm", foreign);
        assertEquals(5, rm.exitCode(), rm.toString());
        assertTrue(rm.err().contains(foreign + " was not created by Kiln (no kiln:managed=true tag)"), rm.err());
        assertEquals(0, kiln.run("volume", "rm", foreign, "--force").exitCode());
        assertTrue(ec2.describeVolumes(r -> r.filters(f -> f.name("volume-id").values(foreign))).volumes().isEmpty());
    }

    @Test
    void whenAnInstanceEndsKeptStaysUnsavedIsFlaggedAndSafeGoes() throws Exception {
        String a = MotoWorld.launchedId(kiln.run("launch", "--ami", ami, "--subnet", subnet, "--role", "dev",
                "--volume", "data:1", "--volume", "scratch:1", "--keep-volume", "data", "--wait", "2m"));
        simulator.awaitBooted(a, Duration.ofSeconds(60));
        String data = volumeOf(a, "data");
        String scratch = volumeOf(a, "scratch");
        assertEquals("true", tags(volume(data)).get("kiln:keep"));
        assertEquals(a, tags(volume(data)).get("kiln:instance"));

        Kiln.Run inUse = kiln.run("volume", "rm", data);
        assertEquals(5, inUse.exitCode(), inUse.toString());
        assertTrue(inUse.err().contains(data + " is in use by " + a), inUse.err());

        Kiln.Run term = kiln.run("terminate", a);
        assertEquals(0, term.exitCode(), term.toString());
        assertTrue(term.err().contains(data + " (data): kept: marked to keep"), term.err());
        assertTrue(term.err().contains(scratch + " (scratch): kept: unsaved: mounted writable on " + a), term.err());
        assertTrue(term.err().contains("kiln: " + data + " (data) is kept; attach it again with: kiln launch --provider ec2"
                + " --role dev --volume data:" + data), term.err());
        assertTrue(tags(volume(scratch)).get("kiln:unsaved").startsWith("unsaved: mounted writable on " + a), tags(volume(scratch)).toString());
        assertEquals("available", volume(data).stateAsString());

        Kiln.Run listed = kiln.run("volumes", "--fleet");
        assertEquals(0, listed.exitCode(), listed.toString());
        assertTrue(listed.out().matches("(?s).*" + data + "\\s+data\\s+1G\\s+available\\s+\\S+\\s+kept\n.*"), listed.out());
        assertTrue(listed.out().matches("(?s).*" + scratch + "\\s+scratch\\s+1G\\s+available\\s+\\S+\\s+unsaved\n.*"), listed.out());

        // Attached again: the launch picks its zone, never formats it on a guess (no created-empty), and keeps it kept.
        String b = MotoWorld.launchedId(kiln.run("launch", "--ami", ami, "--subnet", subnet, "--role", "dev",
                "--volume", "data:" + data, "--wait", "2m"));
        assertEquals(b, volume(data).attachments().get(0).instanceId());
        assertTrue(userData(b).contains("volume-id: " + data), userData(b));
        assertFalse(userData(b).contains("created-empty"), userData(b));
        Kiln.Run elsewhere = kiln.run("launch", "--ami", ami, "--subnet", subnet, "--volume", "data:" + data);
        assertEquals(5, elsewhere.exitCode(), elsewhere.toString());
        assertTrue(elsewhere.err().contains(data + " is in use by " + b), elsewhere.err());

        // A server's restored volume is only ever mounted read-only: when it ends, the volume goes.
        String source = kilnVolume("us-east-1a", "builds", true);
        String snap = ec2.createSnapshot(r -> r.volumeId(source).tagSpecifications(TagSpecification.builder()
                .resourceType(ResourceType.SNAPSHOT).tags(Tag.builder().key("kiln:managed").value("true").build(),
                        Tag.builder().key("kiln:volume-role").value("builds").build(),
                        Tag.builder().key("kiln:collection").value("default").build()).build())).snapshotId();
        String s = MotoWorld.launchedId(kiln.run("launch", "--ami", ami, "--subnet", subnet, "--role", "server",
                "--volume", "builds:" + snap, "--wait", "2m"));
        String served = volumeOf(s, "builds");
        assertEquals("ro", tags(volume(served)).get("kiln:access"));
        Kiln.Run ended = kiln.run("terminate", s);
        assertEquals(0, ended.exitCode(), ended.toString());
        assertTrue(ended.err().contains(served + " (builds): deleted: never written (mounted read-only); all of it is in " + snap),
                ended.err());
        assertTrue(ec2.describeVolumes(r -> r.filters(f -> f.name("volume-id").values(served))).volumes().isEmpty());

        // Unsaved, asked for by id: deleted.
        Kiln.Run rm = kiln.run("volume", "rm", scratch);
        assertEquals(0, rm.exitCode(), rm.toString());
        assertTrue(rm.err().contains("deleted " + scratch + " (scratch); it was unsaved"), rm.err());
    }

    @Test
    void reapDecidesTheVolumesOfAnInstanceThatEndedByItself() throws Exception {
        String a = MotoWorld.launchedId(kiln.run("launch", "--ami", ami, "--subnet", subnet, "--volume", "scratch:1",
                "--wait", "2m"));
        String scratch = volumeOf(a, "scratch");
        // Its lease ended it (the agent powered off): nothing of Kiln's ran at the end.
        ec2.terminateInstances(r -> r.instanceIds(a));
        Kiln.Run dry = kiln.run("reap", "--dry-run");
        assertEquals(0, dry.exitCode(), dry.toString());
        assertTrue(dry.err().contains("would keep " + scratch + " (scratch): unsaved: mounted writable on " + a), dry.err());
        assertFalse(tags(volume(scratch)).containsKey("kiln:unsaved"), "a dry run changes nothing");
        Kiln.Run reap = kiln.run("reap");
        assertEquals(0, reap.exitCode(), reap.toString());
        assertTrue(reap.err().contains(scratch + " (scratch): kept: unsaved: mounted writable on " + a), reap.err());
        assertTrue(tags(volume(scratch)).containsKey("kiln:unsaved"));
        Kiln.Run json = kiln.run("volumes", "--fleet", "-o", "json");
        assertTrue(json.out().contains("\"id\": \"" + scratch + "\"") && json.out().contains("\"unsaved\": true"), json.out());
    }

    @Test
    void aForeverInstanceHasNoDeadlineToExtend() throws Exception {
        String a = MotoWorld.launchedId(kiln.run("launch", "--ami", ami, "--subnet", subnet, "--forever", "--wait", "2m"));
        assertTrue(userData(a).contains("forever: true") && !userData(a).contains("ttl:"), userData(a));
        Kiln.Run ls = kiln.run("ls");
        assertTrue(ls.out().matches("(?s).*" + a + "\\s.*\\sforever\\b.*"), ls.out());
        Kiln.Run extend = kiln.run("extend", a, "1h");
        assertEquals(0, extend.exitCode(), extend.toString());
        assertEquals(a + ": no deadline (launched with --forever); nothing changed: it runs until `kiln stop` or"
                + " `kiln terminate`\n", extend.out());
        Kiln.Run reap = kiln.run("reap", "--grace", "0s");
        assertFalse(reap.out().contains(a), "a forever instance is never reaped by its tag: " + reap.out());
    }
}
