package dev.kiln.e2e;

import dev.kiln.controller.fleet.Ec2Fleet;
import dev.kiln.controller.fleet.FleetVolume;
import dev.kiln.testkit.MotoServer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import software.amazon.awssdk.awscore.exception.AwsServiceException;
import software.amazon.awssdk.services.ec2.Ec2Client;
import software.amazon.awssdk.services.ec2.model.Filter;
import software.amazon.awssdk.services.ec2.model.Instance;
import software.amazon.awssdk.services.ec2.model.ResourceType;
import software.amazon.awssdk.services.ec2.model.Tag;
import software.amazon.awssdk.services.ec2.model.TagSpecification;
import software.amazon.awssdk.services.ec2.model.Volume;

import java.io.ByteArrayOutputStream;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The EC2 launch path against moto behind {@link Ec2Proxy}, which behaves as AWS documents
 * where moto is lenient. Each test names the documented behaviour it relies on.
 */
class Ec2AsDocumentedTest {

    static MotoServer moto;
    static Ec2Client ec2;
    static String subnet;
    static String zone;
    static String ami;

    @TempDir
    Path dir;

    Ec2Proxy proxy;
    Kiln kiln;

    @BeforeAll
    static void startMoto() {
        moto = MotoServer.start();
        ec2 = moto.ec2Client();
        MotoWorld.sdkCredentials();
        var s = MotoWorld.loopbackSubnet(ec2, 1, "us-east-1b");
        subnet = s.subnetId();
        zone = s.availabilityZone();
        ami = MotoWorld.agentImage(ec2, "kiln-agent-2026-11-22");
    }

    @AfterAll
    static void stopMoto() {
        if (moto != null) {
            moto.close();
        }
    }

    @BeforeEach
    void setUp() {
        proxy = new Ec2Proxy(moto.endpoint(), ec2);
        kiln = new Kiln(dir.resolve("home")).env("KILN_EC2_ENDPOINT", proxy.endpoint().toString())
                .env("KILN_REGION", "us-east-1").env("KILN_ADDRESS", "private").env("KILN_PROVIDER", "ec2");
        assertEquals(0, kiln.run("init").exitCode());
    }

    @AfterEach
    void tearDown() {
        proxy.close();
        assertEquals(null, proxy.failure());
        MotoWorld.terminateKilnInstances(ec2);
        for (Volume v : kilnVolumes()) {
            if (v.attachments().isEmpty()) {
                ec2.deleteVolume(d -> d.volumeId(v.volumeId()));
            }
        }
    }

    /** Kiln's volumes that are not attached to anything: what a failed launch could leak. */
    static List<Volume> leftOver() {
        return kilnVolumes().stream().filter(v -> v.attachments().isEmpty()).toList();
    }

    static List<Volume> kilnVolumes() {
        return ec2.describeVolumes(r -> r.filters(Filter.builder().name("tag:kiln:managed").values("true").build())).volumes();
    }

    static List<Instance> instances() {
        return ec2.describeInstances(r -> r.filters(Filter.builder().name("tag:kiln:managed").values("true").build(),
                        Filter.builder().name("instance-state-name").values("pending", "running").build()))
                .reservations().stream().flatMap(r -> r.instances().stream()).toList();
    }

    @Test
    void aLaunchWhoseInstanceNeverRunsDeletesItsVolumes() {
        // EC2 attaches a volume only to a running instance (AttachVolume: IncorrectState); an
        // instance may stay pending past the launch's wait. The proxy holds it pending.
        proxy.holdPending(true);
        Kiln.Run launch = assertTimeoutPreemptively(Duration.ofSeconds(90), () -> kiln.run("launch", "--ami", ami,
                "--subnet", subnet, "--volume", "builds:1", "--volume", "sources:1", "--wait", "4s"));
        assertEquals(9, launch.exitCode(), launch.toString());
        assertTrue(launch.err().contains("was not running within 4s") && launch.err().contains("the volumes this launch created"
                + " are deleted again"), launch.err());
        assertTrue(proxy.actions().contains("RunInstances"), proxy.actions().toString());
        assertEquals(List.of(), leftOver(), "no volume is left behind");
    }

    @Test
    void anInterruptBetweenRunInstancesAndAttachVolumeDeletesTheVolumes() throws Exception {
        // The CLI interrupted while it waits for the instance to run (Ctrl-C ends the wait the
        // same way, through the shutdown hook); the proxy holds the instance pending meanwhile.
        proxy.holdPending(true);
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        Kiln.Run[] result = new Kiln.Run[1];
        Thread launching = new Thread(() -> result[0] = kiln.run(out, err, "launch", "--ami", ami, "--subnet", subnet,
                "--volume", "builds:1", "--wait", "2m"), "kiln-launch");
        launching.start();
        long end = System.nanoTime() + Duration.ofSeconds(60).toNanos();
        while (!proxy.actions().contains("RunInstances") && System.nanoTime() < end) {
            Thread.sleep(50);
        }
        Thread.sleep(500); // into the wait
        launching.interrupt();
        launching.join(Duration.ofSeconds(60).toMillis());
        assertFalse(launching.isAlive(), "the launch ends when interrupted");
        assertEquals(1, result[0].exitCode(), result[0].toString());
        assertEquals(List.of(), leftOver(), "no volume is left behind");
    }

    @Test
    void aFailedLaunchDeletesItsVolumesEvenWhileEc2StillSaysTheyDoNotExist() {
        // Eventual consistency (EC2 API reference, "Eventual consistency"): just after CreateVolume
        // the volume may be InvalidVolume.NotFound, also for DeleteVolume; RunInstances then fails
        // for want of capacity. The clean-up retries the NotFound instead of giving up.
        proxy.notFoundFor(Duration.ofSeconds(4));
        proxy.failEvery("RunInstances", "InsufficientInstanceCapacity", "We currently do not have sufficient capacity.", 500);
        Kiln.Run launch = kiln.run("launch", "--ami", ami, "--subnet", subnet, "--volume", "builds:1", "--no-wait");
        assertEquals(5, launch.exitCode(), launch.toString());
        assertEquals(List.of(), leftOver(), "no volume is left behind");
    }

    @Test
    void aLaunchWaitsOutNotFoundJustAfterItsCreates() {
        // Eventual consistency: new volumes and instances are NotFound by id for a few seconds.
        proxy.notFoundFor(Duration.ofSeconds(3));
        Kiln.Run launch = kiln.run("launch", "--ami", ami, "--subnet", subnet, "--volume", "builds:1", "--no-wait");
        assertEquals(0, launch.exitCode(), launch.toString());
        assertTrue(proxy.errors().contains("InvalidVolume.NotFound"), "the proxy did answer NotFound: " + proxy.errors());
        String id = MotoWorld.launchedId(launch);
        List<FleetVolume> attached = new Ec2Fleet(ec2).volumes(id);
        assertEquals(List.of("builds"), attached.stream().map(FleetVolume::role).toList());
    }

    @Test
    void aLaunchRetriedWithItsClientTokenLaunchesOneInstance() {
        // Idempotency ("Ensuring idempotency in Amazon EC2 API requests"): a retry with the same
        // token and the same parameters gets the first answer; different parameters fail with
        // IdempotentParameterMismatch; a token is at most 64 characters.
        String token = "retry-" + "x".repeat(58); // 64 characters: sub-tokens must not grow past it
        int volumesBefore = kilnVolumes().size();
        Kiln.Run first = kiln.run("launch", "--ami", ami, "--subnet", subnet, "--volume", "builds:1", "--label", "pr=9",
                "--client-token", token, "--no-wait");
        assertEquals(0, first.exitCode(), first.toString());
        Kiln.Run again = kiln.run("launch", "--ami", ami, "--subnet", subnet, "--volume", "builds:1", "--label", "pr=9",
                "--client-token", token, "--no-wait");
        assertEquals(0, again.exitCode(), again.toString());
        assertEquals(MotoWorld.launchedId(first), MotoWorld.launchedId(again));
        assertEquals(1, instances().size(), "one instance");
        assertFalse(proxy.errors().contains("IdempotentParameterMismatch"), proxy.errors().toString());
        assertEquals(volumesBefore + 1, kilnVolumes().size(), "one volume");

        Kiln.Run changed = kiln.run("launch", "--ami", ami, "--subnet", subnet, "--volume", "builds:1", "--label", "pr=10",
                "--client-token", token, "--no-wait");
        assertEquals(5, changed.exitCode(), changed.toString());
        assertTrue(changed.err().contains("retry with exactly the same options, or use a new --client-token"), changed.err());
        assertEquals(1, instances().size(), "still one instance");

        Kiln.Run tooLong = kiln.run("launch", "--ami", ami, "--subnet", subnet, "--client-token", token + "y");
        assertEquals(2, tooLong.exitCode(), tooLong.toString());
        assertTrue(tooLong.err().contains("--client-token must be 1-64 printable ASCII characters"), tooLong.err());
    }

    @Test
    void aVolumeItsClientTokenReturnsInUseElsewhereIsRefusedAndKept() {
        // Idempotency: CreateVolume under a used token answers with the first volume, whatever
        // became of it since; here it was moved to an instance of another launch.
        String token = "moved-" + java.util.UUID.randomUUID();
        Kiln.Run first = kiln.run("launch", "--ami", ami, "--subnet", subnet, "--volume", "builds:1", "--client-token", token,
                "--no-wait");
        assertEquals(0, first.exitCode(), first.toString());
        String volume = new Ec2Fleet(ec2).volumes(MotoWorld.launchedId(first)).get(0).id();
        String other = ec2.runInstances(r -> r.imageId(ami).minCount(1).maxCount(1).subnetId(subnet)).instances().get(0)
                .instanceId();
        ec2.detachVolume(d -> d.volumeId(volume).instanceId(MotoWorld.launchedId(first)));
        ec2.attachVolume(a -> a.volumeId(volume).instanceId(other).device("/dev/sdf"));
        ec2.terminateInstances(t -> t.instanceIds(MotoWorld.launchedId(first)));

        Kiln.Run again = kiln.run("launch", "--ami", ami, "--subnet", subnet, "--volume", "builds:1", "--client-token", token,
                "--no-wait");
        assertEquals(5, again.exitCode(), again.toString());
        assertTrue(again.err().contains("returned " + volume + ", which is in use by " + other), again.err());
        assertEquals(other, ec2.describeVolumes(r -> r.volumeIds(volume)).volumes().get(0).attachments().get(0).instanceId(),
                "the volume stays with the other instance");
        assertFalse(proxy.actions().subList(proxy.actions().lastIndexOf("CreateVolume"), proxy.actions().size())
                .contains("RunInstances"), "nothing is launched");
        ec2.terminateInstances(t -> t.instanceIds(other));
    }

    @Test
    void xenInstanceTypesAreRefusedBeforeAnythingIsCreated() {
        // Xen instance types show EBS volumes as /dev/xvd* without an NVMe serial ("Amazon EBS and
        // NVMe", "Device names on Linux instances"); Kiln finds its volumes by that serial.
        Kiln.Run launch = kiln.run("launch", "--ami", ami, "--subnet", subnet, "--type", "t2.micro", "--volume", "builds:1");
        assertEquals(2, launch.exitCode(), launch.toString());
        assertTrue(launch.err().contains("instance type t2.micro runs on the Xen hypervisor")
                && launch.err().contains("use a Nitro type such as t3.micro"), launch.err());
        assertTrue(proxy.actions().stream().noneMatch(a -> a.startsWith("Create") || a.equals("RunInstances")),
                proxy.actions().toString());
        assertEquals(List.of(), leftOver());
        assertEquals(List.of(), instances());
    }

    @Test
    void anInstancesVolumesAreKilnsOnlyWhateverOrderEc2ListsThemIn() {
        // DescribeVolumes returns volumes in no documented order; moto lists the root volume
        // (made with the instance) before the Kiln volume attached afterwards.
        Instance i = ec2.runInstances(r -> r.imageId(ami).minCount(1).maxCount(1).subnetId(subnet)
                .tagSpecifications(TagSpecification.builder().resourceType(ResourceType.INSTANCE).tags(
                        Tag.builder().key("kiln:managed").value("true").build(),
                        Tag.builder().key("kiln:role").value("worker").build()).build())).instances().get(0);
        String builds = ec2.createVolume(v -> v.availabilityZone(zone).size(1).tagSpecifications(TagSpecification.builder()
                .resourceType(ResourceType.VOLUME).tags(Tag.builder().key("kiln:managed").value("true").build(),
                        Tag.builder().key("kiln:volume-role").value("builds").build()).build())).volumeId();
        ec2.attachVolume(a -> a.instanceId(i.instanceId()).volumeId(builds).device("/dev/sdf"));
        List<Volume> all = ec2.describeVolumes(r -> r.filters(Filter.builder().name("attachment.instance-id")
                .values(i.instanceId()).build())).volumes();
        assertTrue(all.size() == 2 && !all.get(0).volumeId().equals(builds), "the root volume is listed first: " + all);
        Ec2Fleet fleet = new Ec2Fleet(ec2);
        assertEquals(List.of(builds), fleet.volumes(i.instanceId()).stream().map(FleetVolume::id).toList());
        assertTrue(fleet.workTree(i.instanceId()).contains("builds"), fleet.workTree(i.instanceId()));
    }

    @Test
    void withoutASubnetTheZoneIsAStandardOneThatOffersTheType() {
        // DescribeAvailabilityZones may list Local and Wavelength zones (ZoneType), and not every
        // zone offers every type (DescribeInstanceTypeOfferings); moto's data has us-east-1a, the
        // first zone, without trn1.2xlarge.
        Kiln.Run launch = kiln.run("launch", "--ami", ami, "--type", "trn1.2xlarge", "--volume", "builds:1", "--no-wait");
        assertEquals(0, launch.exitCode(), launch.toString());
        Instance i = ec2.describeInstances(r -> r.instanceIds(MotoWorld.launchedId(launch))).reservations().get(0).instances().get(0);
        String chosen = i.placement().availabilityZone();
        assertTrue(ec2.describeInstanceTypeOfferings(r -> r.locationType("availability-zone").filters(Filter.builder()
                .name("instance-type").values("trn1.2xlarge").build())).instanceTypeOfferings().stream()
                .anyMatch(o -> o.location().equals(chosen)), chosen + " offers trn1.2xlarge");
        assertFalse(chosen.equals("us-east-1a"), chosen);
    }

    @Test
    void withoutASubnetOrADefaultVpcTheLaunchSaysWhatToDo() {
        // Accounts may have no default VPC ("Default VPCs": it can be deleted); RunInstances
        // without a subnet then fails. The test deletes us-west-1's default VPC in moto.
        Ec2Client west = Ec2Client.builder().endpointOverride(moto.endpoint()).region(software.amazon.awssdk.regions.Region.US_WEST_1)
                .httpClient(software.amazon.awssdk.http.urlconnection.UrlConnectionHttpClient.create()).build();
        for (var vpc : west.describeVpcs(r -> r.filters(Filter.builder().name("isDefault").values("true").build())).vpcs()) {
            west.describeSubnets(r -> r.filters(Filter.builder().name("vpc-id").values(vpc.vpcId()).build())).subnets()
                    .forEach(sn -> west.deleteSubnet(d -> d.subnetId(sn.subnetId())));
            west.deleteVpc(d -> d.vpcId(vpc.vpcId()));
        }
        String westAmi = west.describeImages(r -> r.maxResults(5)).images().get(0).imageId();
        Kiln.Run launch = kiln.env("KILN_REGION", "us-west-1").run("launch", "--ami", westAmi, "--no-wait");
        assertEquals(3, launch.exitCode(), launch.toString());
        assertTrue(launch.err().contains("this region has no default VPC, so a launch needs --subnet SUBNET_ID"), launch.err());
        assertEquals(List.of(), west.describeInstances(r -> r.filters(Filter.builder().name("tag:kiln:managed").values("true")
                .build())).reservations());
    }

    @Test
    void theProxyRefusesWhatEc2RefusesAndMotoAllows() {
        // "The volume and instance must be in the same Availability Zone" (AttachVolume), and
        // "You can't delete a snapshot ... used by a registered AMI" (DeleteSnapshot).
        Ec2Client viaProxy = Ec2Client.builder().endpointOverride(proxy.endpoint())
                .region(software.amazon.awssdk.regions.Region.US_EAST_1)
                .httpClient(software.amazon.awssdk.http.urlconnection.UrlConnectionHttpClient.create()).build();
        String instance = ec2.runInstances(r -> r.imageId(ami).minCount(1).maxCount(1).subnetId(subnet)).instances().get(0)
                .instanceId();
        String elsewhere = ec2.createVolume(v -> v.availabilityZone("us-east-1c").size(1)).volumeId();
        AwsServiceException zoneMismatch = assertThrows(AwsServiceException.class, () -> viaProxy.attachVolume(a -> a
                .instanceId(instance).volumeId(elsewhere).device("/dev/sdf")));
        assertEquals("InvalidVolume.ZoneMismatch", zoneMismatch.awsErrorDetails().errorCode());
        ec2.deleteVolume(d -> d.volumeId(elsewhere));

        String snapshot = ec2.describeImages(r -> r.imageIds(ami)).images().get(0).blockDeviceMappings().stream()
                .filter(b -> b.ebs() != null && b.ebs().snapshotId() != null).findFirst().orElseThrow().ebs().snapshotId();
        AwsServiceException inUse = assertThrows(AwsServiceException.class, () -> viaProxy.deleteSnapshot(d -> d
                .snapshotId(snapshot)));
        assertEquals("InvalidSnapshot.InUse", inUse.awsErrorDetails().errorCode());
        ec2.terminateInstances(t -> t.instanceIds(instance));
    }
}
