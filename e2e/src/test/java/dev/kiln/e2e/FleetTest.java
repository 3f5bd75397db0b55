package dev.kiln.e2e;

import dev.kiln.controller.fleet.Ec2Fleet;
import dev.kiln.controller.fleet.FleetSnapshot;
import dev.kiln.testkit.MotoServer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import software.amazon.awssdk.services.ec2.Ec2Client;
import software.amazon.awssdk.services.ec2.model.Filter;
import software.amazon.awssdk.services.ec2.model.Instance;
import software.amazon.awssdk.services.ec2.model.InstanceAttributeName;
import software.amazon.awssdk.services.ec2.model.ResourceType;
import software.amazon.awssdk.services.ec2.model.Tag;
import software.amazon.awssdk.services.ec2.model.TagSpecification;
import software.amazon.awssdk.services.ec2.model.Volume;

import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;
import java.util.stream.Collectors;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The EC2 provider against moto_server, with real kiln-agent processes booted for the instances it
 * launches (see {@link FleetSimulator}).
 */
class FleetTest {

    static MotoServer moto;
    /**
     * The controller's EC2 requests go through the {@link Ec2Proxy}, which behaves as AWS
     * documents where moto is lenient (NotFound for a second after a create, client tokens,
     * zones); -Dkiln.test.ec2-proxy=false sends them to moto directly.
     */
    static Ec2Proxy proxy;
    static Ec2Client ec2;
    static String subnet;
    static String ami;

    @TempDir
    Path dir;

    Kiln kiln;
    FleetSimulator simulator;

    @BeforeAll
    static void startMoto() {
        moto = MotoServer.start();
        ec2 = moto.ec2Client();
        if (!"false".equals(System.getProperty("kiln.test.ec2-proxy"))) {
            proxy = new Ec2Proxy(moto.endpoint(), ec2).notFoundFor(Duration.ofSeconds(1));
        }
        MotoWorld.sdkCredentials();
        subnet = MotoWorld.loopbackSubnet(ec2, 1, null).subnetId();
        ami = MotoWorld.agentImage(ec2, "kiln-agent-2026-11-22");
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
        kiln = new Kiln(dir.resolve("home")).env("KILN_EC2_ENDPOINT", (proxy != null ? proxy.endpoint() : moto.endpoint()).toString())
                .env("KILN_REGION", "us-east-1").env("KILN_ADDRESS", "private").env("KILN_PROVIDER", "ec2");
        assertEquals(0, kiln.run("init").exitCode());
        simulator = new FleetSimulator(ec2, dir.resolve("instances"));
    }

    @AfterEach
    void tearDown() throws Exception {
        simulator.close();
        assertEquals(null, proxy == null ? null : proxy.failure(), "the EC2 proxy itself worked");
        MotoWorld.terminateKilnInstances(ec2);
    }

    String launchedId(Kiln.Run launch) {
        return MotoWorld.launchedId(launch);
    }

    Instance instance(String id) {
        return ec2.describeInstances(r -> r.instanceIds(id)).reservations().get(0).instances().get(0);
    }

    Map<String, String> tags(Instance i) {
        return i.tags().stream().collect(Collectors.toMap(Tag::key, Tag::value));
    }

    @Test
    void launchRunsAnInstanceAsKilnWantsItAndWaitsForItsAgent() throws Exception {
        Instant before = Instant.now();
        Kiln.Run launch = kiln.run("launch", "--role", "worker", "--ami", "kiln-agent-*", "--subnet", subnet,
                "--type", "c5.2xlarge", "--ttl", "2h", "--volume", "builds:10", "--label", "pr=7", "--wait", "2m");
        assertEquals(0, launch.exitCode(), launch.toString());
        assertTrue(launch.err().contains("answers at " + MotoWorld.subnetPrefix(1)), launch.err());
        Instance i = instance(launchedId(launch));
        assertEquals(ami, i.imageId(), "the newest AMI named like kiln-agent-*");
        assertEquals("required", i.metadataOptions().httpTokensAsString());
        assertEquals(1, i.metadataOptions().httpPutResponseHopLimit());
        assertEquals("terminate", ec2.describeInstanceAttribute(r -> r.instanceId(i.instanceId())
                .attribute(InstanceAttributeName.INSTANCE_INITIATED_SHUTDOWN_BEHAVIOR)).instanceInitiatedShutdownBehavior().value());
        Map<String, String> tags = tags(i);
        assertEquals("true", tags.get("kiln:managed"));
        assertEquals("worker", tags.get("kiln:role"));
        assertEquals("7", tags.get("kiln:label:pr"));
        Instant expires = Instant.parse(tags.get("kiln:expires-at"));
        assertTrue(!expires.isBefore(before.plus(Duration.ofHours(2)).minusSeconds(2)) && expires.isBefore(Instant.now().plus(Duration.ofHours(2))));
        assertTrue(tags.get("kiln:cert-name").endsWith(".kiln.internal"));
        List<Volume> volumes = ec2.describeVolumes(r -> r.filters(Filter.builder().name("attachment.instance-id")
                .values(i.instanceId()).build())).volumes();
        assertTrue(volumes.stream().anyMatch(v -> v.size() == 10 && v.tags().stream().anyMatch(
                t -> t.key().equals("kiln:volume-role") && t.value().equals("builds"))), volumes.toString());

        Kiln.Run ls = kiln.run("ls");
        assertEquals(0, ls.exitCode(), ls.toString());
        assertTrue(ls.out().matches("(?s).*" + i.instanceId() + "\\s+worker\\s+pr=7\\s+running\\s+ready\\s+-\\s+1h5\\dm\\s+" + Pattern.quote(MotoWorld.subnetPrefix(1)) + "\\d+:7443.*"),
                ls.out());
        Kiln.Run status = kiln.run("status", "--agent", i.privateIpAddress() + ":7443", "--tls-server-name", tags.get("kiln:cert-name"));
        assertTrue(status.out().matches("(?s).*instance\\s+" + i.instanceId() + "\n.*"), status.toString());
    }

    @Test
    void theFleetCapRefusesTheNextLaunchListingTheRunningOnes() {
        Kiln.Run first = kiln.run("launch", "--ami", ami, "--subnet", subnet, "--label", "pr=1", "--max", "1");
        assertEquals(0, first.exitCode(), first.toString());
        String id = launchedId(first);
        Kiln.Run second = kiln.run("launch", "--ami", ami, "--subnet", subnet, "--label", "pr=2", "--max", "1");
        assertEquals(5, second.exitCode(), second.toString());
        assertTrue(second.err().contains("the fleet cap is 1 and 1 managed instances are pending or running:\n  " + id
                + " worker running {pr=1}"), second.err());
        assertEquals(1, new Ec2Fleet(ec2).active().size());
    }

    @Test
    void terminateDrainsThroughTheAgentAndTheInstanceEnds() throws Exception {
        Kiln.Run launch = kiln.run("launch", "--ami", ami, "--subnet", subnet);
        String id = launchedId(launch);
        FleetSimulator.Booted booted = simulator.awaitBooted(id, Duration.ofSeconds(60));
        Kiln.Run term = kiln.run("terminate", id);
        assertEquals(0, term.exitCode(), term.toString());
        assertTrue(term.err().contains(id + " is draining and will power off"), term.err());
        assertEquals(0, booted.agent().awaitExit(Duration.ofSeconds(60)));
        for (int n = 0; n < 100 && !instance(id).state().nameAsString().equals("terminated"); n++) {
            Thread.sleep(100);
        }
        assertEquals("terminated", instance(id).state().nameAsString());
    }

    @Test
    void extendAndStopActOnOneInstanceOrTheWholeFleet() throws Exception {
        String a = launchedId(kiln.run("launch", "--ami", ami, "--subnet", subnet, "--ttl", "1h"));
        String b = launchedId(kiln.run("launch", "--ami", ami, "--subnet", subnet, "--ttl", "1h"));
        FleetSimulator.Booted bootedA = simulator.awaitBooted(a, Duration.ofSeconds(60));
        FleetSimulator.Booted bootedB = simulator.awaitBooted(b, Duration.ofSeconds(60));

        Kiln.Run one = kiln.run("extend", a, "30m");
        assertEquals(0, one.exitCode(), one.toString());
        assertTrue(one.out().startsWith(a + ": deadline "), one.out());
        assertTrue(one.out().contains("(in 1h29m") || one.out().contains("(in 1h30m"), one.out());

        Kiln.Run every = kiln.run("extend", "--all", "1h");
        assertEquals(0, every.exitCode(), every.toString());
        assertTrue(every.out().contains(a + ": deadline ") && every.out().contains(b + ": deadline "), every.out());
        assertTrue(every.out().matches("(?s).*" + a + ": deadline \\S+ \\(in (2h2\\dm|2h30m|2h;).*"), every.out());
        assertTrue(every.out().matches("(?s).*" + b + ": deadline \\S+ \\(in (1h5\\dm|2h;).*"), every.out());

        Kiln.Run stop = kiln.run("stop", "--all", "--reason", "end of the day");
        assertEquals(0, stop.exitCode(), stop.toString());
        assertEquals(0, bootedA.agent().awaitExit(Duration.ofSeconds(60)));
        assertEquals(0, bootedB.agent().awaitExit(Duration.ofSeconds(60)));
    }

    @Test
    void terminateRefusesAnUnreachableAgentUnlessForced() throws Exception {
        Kiln.Run launch = kiln.run("launch", "--ami", ami, "--subnet", subnet, "--no-wait");
        String id = launchedId(launch);
        simulator.awaitBooted(id, Duration.ofSeconds(60));
        simulator.crashAgent(id); // the agent is gone; the instance still runs
        Kiln.Run refused = kiln.run("terminate", id);
        assertEquals(4, refused.exitCode(), refused.toString());
        assertTrue(refused.err().contains("add --force"), refused.err());
        Kiln.Run forced = kiln.run("terminate", id, "--force");
        assertEquals(0, forced.exitCode(), forced.toString());
        assertTrue(List.of("shutting-down", "terminated").contains(instance(id).state().nameAsString()));
    }

    @Test
    void anInterruptedWaitForTheAgentFailsTheLaunchInsteadOfReportingIt() throws Exception {
        simulator.close(); // no agent ever boots: the launch waits for one
        java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream();
        java.io.ByteArrayOutputStream err = new java.io.ByteArrayOutputStream();
        Kiln.Run[] result = new Kiln.Run[1];
        Thread launching = new Thread(() -> result[0] = kiln.run(out, err, "launch", "--ami", ami, "--subnet", subnet,
                "--wait", "2m"), "kiln-launch");
        launching.start();
        long end = System.nanoTime() + Duration.ofSeconds(60).toNanos();
        while (!err.toString().contains("waiting for its agent...") && launching.isAlive() && System.nanoTime() < end) {
            Thread.sleep(50);
        }
        assertTrue(err.toString().contains("waiting for its agent..."), err.toString());
        launching.interrupt();
        launching.join(Duration.ofSeconds(60).toMillis());
        assertFalse(launching.isAlive(), "the launch ends when interrupted");
        Kiln.Run run = result[0];
        assertEquals(1, run.exitCode(), run.toString());
        assertTrue(run.err().matches("(?s).*kiln: interrupted while waiting for the agent on i-[0-9a-f]+ at \\S+; the instance is"
                + " running and ends by its lease, or `kiln terminate i-[0-9a-f]+ --force`\n"), run.err());
        assertEquals("", run.out(), "no launched instance is reported");
    }

    @Test
    void reapTerminatesOnlyManagedInstancesLongPastTheirLease() throws Exception {
        String id = launchedId(kiln.run("launch", "--ami", ami, "--subnet", subnet, "--no-wait"));
        String fresh = launchedId(kiln.run("launch", "--ami", ami, "--subnet", subnet, "--no-wait"));
        ec2.createTags(t -> t.resources(id).tags(Tag.builder().key("kiln:expires-at").value(Instant.now().minus(Duration.ofHours(1)).toString()).build()));
        String stranger = ec2.runInstances(r -> r.imageId(ami).minCount(1).maxCount(1).subnetId(subnet)).instances().get(0).instanceId();
        // Its agent hangs: the tag is all reap has to go by.
        AgentProcess hung = simulator.awaitBooted(id, Duration.ofSeconds(60)).agent();
        hung.hang();
        Kiln.Run reap;
        try {
            Kiln.Run dry = kiln.run("reap", "--grace", "30m", "--dry-run", "--timeout", "2s");
            assertTrue(dry.out().contains(id) && dry.out().contains("would terminate (agent unreachable)"), dry.out());
            assertEquals("running", instance(id).state().nameAsString());

            reap = kiln.run("reap", "--grace", "30m", "--timeout", "2s");
            assertEquals(0, reap.exitCode(), reap.toString());
            assertTrue(reap.out().contains("terminated (agent unreachable)"), reap.out());
            // The hung agent cannot have ended it: reap did.
            assertTrue(List.of("shutting-down", "terminated").contains(instance(id).state().nameAsString()));
        } finally {
            hung.resume();
        }
        assertFalse(reap.out().contains(fresh), reap.out());
        assertTrue(List.of("shutting-down", "terminated").contains(instance(id).state().nameAsString()));
        assertEquals("running", instance(fresh).state().nameAsString());
        assertEquals("running", instance(stranger).state().nameAsString());
        Kiln.Run notOurs = kiln.run("terminate", stranger, "--force");
        assertEquals(5, notOurs.exitCode());
        assertTrue(notOurs.err().contains("is not managed by Kiln"), notOurs.err());
    }

    @Test
    void reapPastTheOriginalDeadlineKeepsAnExtendedInstanceAndTheTagFollowsTheLease() throws Exception {
        Kiln.Run launch = kiln.run("launch", "--ami", ami, "--subnet", subnet, "--ttl", "60s", "--wait", "2m");
        assertEquals(0, launch.exitCode(), launch.toString());
        String id = launchedId(launch);
        FleetSimulator.Booted booted = simulator.awaitBooted(id, Duration.ofSeconds(60));
        Instant original = Instant.parse(tags(instance(id)).get("kiln:expires-at"));

        Kiln.Run extend = kiln.run("extend", id, "1h");
        assertEquals(0, extend.exitCode(), extend.toString());
        java.util.regex.Matcher said = java.util.regex.Pattern.compile(id + ": deadline (\\S+) ").matcher(extend.out());
        assertTrue(said.find(), extend.out());
        Instant extended = Instant.parse(said.group(1));
        assertEquals(extended, Instant.parse(tags(instance(id)).get("kiln:expires-at")), "the tag shows the agent's new deadline");
        assertTrue(extended.isAfter(original.plus(Duration.ofMinutes(59))), extended + " vs " + original);

        // A cron'd reap after the original deadline (and its grace) have passed.
        while (!Instant.now().isAfter(original.plusSeconds(3))) {
            Thread.sleep(200);
        }
        Kiln.Run reap = kiln.run("reap", "--grace", "1s");
        assertEquals(0, reap.exitCode(), reap.toString());
        assertFalse(reap.out().contains(id), reap.out());
        assertEquals("running", instance(id).state().nameAsString());
        assertTrue(booted.agent().alive());

        // A tag that lags the lease (an extension through --agent, or a CreateTags that was denied):
        // reap asks the agent, keeps the instance, and the tag follows the agent's deadline again.
        ec2.createTags(t -> t.resources(id).tags(Tag.builder().key("kiln:expires-at").value(original.toString()).build()));
        Kiln.Run stale = kiln.run("reap", "--grace", "1s");
        assertEquals(0, stale.exitCode(), stale.toString());
        assertTrue(stale.out().matches("(?s).*" + id + " .* kept \\(its agent's deadline is " + extended + "\\).*"), stale.out());
        assertTrue(stale.err().contains("0 expired instances terminated; 1 kept by its agent"), stale.err());
        assertEquals("running", instance(id).state().nameAsString());
        assertTrue(booted.agent().alive());
        assertEquals(extended, Instant.parse(tags(instance(id)).get("kiln:expires-at")));
    }

    @Test
    void retentionKeepsTheNewestAndNeverTouchesOthersSnapshots() throws Exception {
        String volume = ec2.createVolume(v -> v.availabilityZone("us-east-1a").size(1)).volumeId();
        for (int n = 0; n < 4; n++) {
            ec2.createSnapshot(s -> s.volumeId(volume).tagSpecifications(TagSpecification.builder()
                    .resourceType(ResourceType.SNAPSHOT).tags(Tag.builder().key("kiln:managed").value("true").build(),
                            Tag.builder().key("kiln:volume-role").value("builds").build(),
                            Tag.builder().key("kiln:collection").value("default").build()).build()));
            Thread.sleep(1100); // distinct start times
        }
        String foreign = ec2.createSnapshot(s -> s.volumeId(volume).tagSpecifications(TagSpecification.builder()
                .resourceType(ResourceType.SNAPSHOT).tags(Tag.builder().key("kiln:volume-role").value("builds").build()).build())).snapshotId();
        Ec2Fleet fleet = new Ec2Fleet(ec2);
        List<FleetSnapshot> before = fleet.snapshots("builds");
        assertEquals(4, before.size(), "only Kiln's are listed");
        List<String> deleted = fleet.prune("default", "builds", 2).delete().stream().map(FleetSnapshot::id).toList();
        assertEquals(List.of(before.get(2).id(), before.get(3).id()), deleted);
        assertEquals(List.of(before.get(0).id(), before.get(1).id()),
                fleet.snapshots("builds").stream().map(FleetSnapshot::id).toList());
        assertTrue(ec2.describeSnapshots(r -> r.snapshotIds(foreign)).snapshots().size() == 1, "the foreign snapshot is untouched");

        Kiln.Run list = kiln.run("snapshots", "--role", "builds");
        assertTrue(list.out().contains(before.get(0).id()) && !list.out().contains(foreign), list.out());

        Kiln.Run launch = kiln.run("launch", "--ami", ami, "--subnet", subnet, "--volume", "builds:latest", "--no-wait");
        assertEquals(0, launch.exitCode(), launch.toString());
        List<Volume> restored = ec2.describeVolumes(r -> r.filters(Filter.builder().name("attachment.instance-id")
                .values(launchedId(launch)).build())).volumes();
        assertEquals(before.get(0).id(), restored.get(0).snapshotId(), "restored from the newest snapshot");
    }

    /** A Kiln snapshot of another volume, tagged as `kiln snapshot` tags one of the given collection (none: ""). */
    String kilnSnapshot(String volume, String collection) throws InterruptedException {
        List<Tag> tags = new java.util.ArrayList<>(List.of(Tag.builder().key("kiln:managed").value("true").build(),
                Tag.builder().key("kiln:volume-role").value("builds").build()));
        if (!collection.isEmpty()) {
            tags.add(Tag.builder().key("kiln:collection").value(collection).build());
        }
        String id = ec2.createSnapshot(s -> s.volumeId(volume).tagSpecifications(TagSpecification.builder()
                .resourceType(ResourceType.SNAPSHOT).tags(tags).build())).snapshotId();
        Thread.sleep(1100); // distinct start times
        return id;
    }

    boolean exists(String snapshotId) {
        return !ec2.describeSnapshots(r -> r.filters(Filter.builder().name("snapshot-id").values(snapshotId).build()))
                .snapshots().isEmpty();
    }

    String restoredFrom(String instanceId) {
        return ec2.describeVolumes(r -> r.filters(Filter.builder().name("attachment.instance-id").values(instanceId).build()))
                .volumes().get(0).snapshotId();
    }

    @Test
    void retentionAndLatestStayInsideTheSnapshotsCollection() throws Exception {
        Kiln.Run launch = kiln.run("launch", "--ami", ami, "--subnet", subnet, "--volume", "builds:1", "--wait", "2m");
        assertEquals(0, launch.exitCode(), launch.toString());
        String a = launchedId(launch);
        Kiln.Run first = kiln.run("snapshot", a, "builds");
        assertEquals(0, first.exitCode(), first.toString());
        String oldest = first.out().lines().skip(1).findFirst().orElseThrow().split("\\s+")[0];
        Thread.sleep(1100);
        // Another collection (photos) with the same volume role: its snapshots are newer than this one's.
        String other = ec2.createVolume(v -> v.availabilityZone("us-east-1a").size(1)).volumeId();
        String photos1 = kilnSnapshot(other, "photos");
        String photos2 = kilnSnapshot(other, "photos");

        Kiln.Run keep = kiln.run("snapshot", a, "builds", "--keep", "1", "--wait");
        assertEquals(0, keep.exitCode(), keep.toString());
        String newest = keep.out().lines().skip(1).findFirst().orElseThrow().split("\\s+")[0];
        assertTrue(exists(photos1) && exists(photos2), "the other collection's snapshots are untouched: " + keep.err());
        assertTrue(keep.err().contains("kiln: " + newest + " completed"), keep.err());
        // Deleted: the older one of the default collection (and any other test left there in this moto).
        assertTrue(keep.err().matches("(?s).*kiln: kept the newest 1 snapshot of builds in collection default; deleted [^\n]*"
                + oldest + ".*"), keep.err());
        assertFalse(exists(oldest));
        Map<String, String> tags = ec2.describeSnapshots(r -> r.snapshotIds(newest)).snapshots().get(0).tags().stream()
                .collect(Collectors.toMap(Tag::key, Tag::value));
        assertEquals("default", tags.get("kiln:collection"), "carried from the volume: " + tags);

        String photos3 = kilnSnapshot(other, "photos");
        Kiln.Run latest = kiln.run("launch", "--ami", ami, "--subnet", subnet, "--volume", "builds:latest", "--no-wait");
        assertEquals(0, latest.exitCode(), latest.toString());
        assertEquals(newest, restoredFrom(launchedId(latest)), "builds:latest of the default collection, not photos' newer one");
        Kiln.Run theirs = kiln.run("launch", "--ami", ami, "--subnet", subnet, "--collection", "photos",
                "--volume", "builds:latest", "--no-wait");
        assertEquals(0, theirs.exitCode(), theirs.toString());
        assertEquals(photos3, restoredFrom(launchedId(theirs)));
        Kiln.Run listed = kiln.run("snapshots", "--collection", "photos");
        assertEquals(List.of(photos3, photos2, photos1), listed.out().lines().skip(1).map(l -> l.split("\\s+")[0]).toList());

        // A Kiln snapshot from before collections, newer than any: which collection it holds is not guessed.
        String legacy = kilnSnapshot(other, "");
        Kiln.Run ambiguous = kiln.run("launch", "--ami", ami, "--subnet", subnet, "--volume", "builds:latest", "--no-wait");
        assertEquals(5, ambiguous.exitCode(), ambiguous.toString());
        assertTrue(ambiguous.err().contains("builds:latest in collection 'default' is ambiguous: " + legacy + " carries no"
                + " collection"), ambiguous.err());
        assertTrue(ambiguous.err().contains("--tags Key=kiln:collection,Value=default") && ambiguous.err().contains(
                "restore one by its id: builds:" + legacy), ambiguous.err());
        Kiln.Run pruneAgain = kiln.run("snapshot", a, "builds", "--keep", "1");
        assertEquals(0, pruneAgain.exitCode(), pruneAgain.toString());
        assertTrue(exists(legacy), "never pruned without a collection");
        assertTrue(pruneAgain.err().contains("kiln: not pruned: " + legacy + " names no collection"), pruneAgain.err());

        // Other tests share this moto and count Kiln's builds snapshots.
        for (FleetSnapshot s : new Ec2Fleet(ec2).snapshots("builds")) {
            ec2.deleteSnapshot(d -> d.snapshotId(s.id()));
        }
    }

    @Test
    void aNewestSnapshotInErrorIsPassedOverByLatestAndNamed() throws Exception {
        String volume = ec2.createVolume(v -> v.availabilityZone("us-east-1a").size(1)).volumeId();
        String good = kilnSnapshot(volume, "errs");
        String failed = kilnSnapshot(volume, "errs");
        try (SnapshotStateProxy proxy = new SnapshotStateProxy(moto.endpoint())) {
            proxy.states.put(failed, "error");
            Kiln viaProxy = new Kiln(dir.resolve("home")).env("KILN_EC2_ENDPOINT", proxy.endpoint())
                    .env("KILN_REGION", "us-east-1").env("KILN_ADDRESS", "private").env("KILN_PROVIDER", "ec2");
            Kiln.Run launch = viaProxy.run("launch", "--ami", ami, "--subnet", subnet, "--collection", "errs",
                    "--volume", "builds:latest", "--no-wait");
            assertEquals(0, launch.exitCode(), launch.toString());
            assertEquals(good, restoredFrom(launchedId(launch)), "the newest completed one");
            assertTrue(launch.err().contains("kiln: " + failed + ", a newer snapshot of errs/builds, is in state error (it never"
                    + " completed and cannot be restored): ignoring it; restoring " + good), launch.err());
        } finally {
            ec2.deleteSnapshot(d -> d.snapshotId(good));
            ec2.deleteSnapshot(d -> d.snapshotId(failed));
        }
    }

    @Test
    void keepOneNeverDeletesTheNewestCompletedSnapshotWhileANewerOneIsPending() throws Exception {
        Kiln.Run launch = kiln.run("launch", "--ami", ami, "--subnet", subnet, "--collection", "pend", "--volume", "builds:1",
                "--wait", "2m");
        assertEquals(0, launch.exitCode(), launch.toString());
        String a = launchedId(launch);
        String volume = ec2.describeVolumes(r -> r.filters(Filter.builder().name("attachment.instance-id").values(a).build()))
                .volumes().get(0).volumeId();
        String older = kilnSnapshot(volume, "pend");
        String done = kilnSnapshot(volume, "pend");
        try (SnapshotStateProxy proxy = new SnapshotStateProxy(moto.endpoint())) {
            proxy.states.put(older, "completed");
            proxy.states.put(done, "completed");
            proxy.otherwise = "pending"; // the snapshot this test takes next
            Kiln viaProxy = new Kiln(dir.resolve("home")).env("KILN_EC2_ENDPOINT", proxy.endpoint())
                    .env("KILN_REGION", "us-east-1").env("KILN_ADDRESS", "private").env("KILN_PROVIDER", "ec2");
            Kiln.Run keep = viaProxy.run("snapshot", a, "builds", "--keep", "1");
            assertEquals(0, keep.exitCode(), keep.toString());
            String pending = keep.out().lines().skip(1).findFirst().orElseThrow().split("\\s+")[0];
            assertTrue(exists(done), "the newest completed snapshot is kept: " + keep.err());
            assertTrue(exists(pending));
            assertFalse(exists(older));
            assertTrue(keep.err().contains("kiln: kept " + done + " as well: it is the newest completed snapshot of pend/builds,"
                    + " and the newer ones have not completed yet"), keep.err());
            ec2.deleteSnapshot(d -> d.snapshotId(pending));
        } finally {
            if (exists(done)) {
                ec2.deleteSnapshot(d -> d.snapshotId(done));
            }
        }
    }

    @Test
    void aSnapshotIsDescribedByItsIdAndAnUnknownOneIsNotFoundNotAnError() {
        String volume = ec2.createVolume(v -> v.availabilityZone("us-east-1a").size(1)).volumeId();
        String id = ec2.createSnapshot(s -> s.volumeId(volume)).snapshotId();
        Ec2Fleet fleet = new Ec2Fleet(ec2);
        assertEquals("completed", fleet.snapshot(id).orElseThrow().state(), "found though it carries no Kiln tag");
        // What EC2 answers (InvalidSnapshot.NotFound) for an id it does not know yet or any more: the wait asks again.
        assertTrue(fleet.snapshot("snap-0123456789abcdef0").isEmpty());
        ec2.deleteSnapshot(d -> d.snapshotId(id));
    }

    @Test
    void capacityQuotaCredentialsAndRegionErrorsSayWhatToDo() throws Exception {
        // moto never runs out of capacity or quota: the proxy in front of it answers RunInstances
        // with EC2's own error documents, which the real SDK parses as it would EC2's.
        try (FleetSimulator proxy = FleetSimulator.withProxy(ec2, moto.endpoint(), dir.resolve("proxy"))) {
            Kiln viaProxy = new Kiln(dir.resolve("home")).env("KILN_EC2_ENDPOINT", proxy.ec2Endpoint().toString())
                    .env("KILN_REGION", "us-east-1").env("KILN_ADDRESS", "private").env("KILN_PROVIDER", "ec2");
            proxy.failEvery("RunInstances", "InsufficientInstanceCapacity",
                    "We currently do not have sufficient c5.2xlarge capacity in the Availability Zone you requested.", 500);
            int volumesBefore = ec2.describeVolumes(r -> r.filters(Filter.builder().name("tag:kiln:managed").values("true").build()))
                    .volumes().size();
            Kiln.Run capacity = viaProxy.run("launch", "--ami", ami, "--subnet", subnet, "--type", "c5.2xlarge", "--volume", "builds:1");
            assertEquals(5, capacity.exitCode(), capacity.toString());
            assertTrue(capacity.err().contains("EC2 has no capacity for this request (InsufficientInstanceCapacity: We currently"
                    + " do not have sufficient c5.2xlarge capacity") && capacity.err().contains("try another instance type or subnet"),
                    capacity.err());
            assertEquals(List.of("kiln: launching a worker (c5.2xlarge, lease 2h)...", "kiln: launching a worker: EC2 has no capacity"),
                    capacity.err().lines().map(l -> l.replaceAll(" for this request.*", "")).toList(), "a one-line error");
            assertEquals(volumesBefore, ec2.describeVolumes(r -> r.filters(Filter.builder().name("tag:kiln:managed").values("true")
                    .build())).volumes().size(), "the volume the failed launch made is deleted again");
            proxy.failEvery("RunInstances", "InstanceLimitExceeded", "You have requested more instances (21) than your current"
                    + " instance limit of 20 allows.", 400);
            Kiln.Run quota = viaProxy.run("launch", "--ami", ami, "--subnet", subnet);
            assertEquals(5, quota.exitCode(), quota.toString());
            assertTrue(quota.err().contains("the account's EC2 quota is used up (InstanceLimitExceeded")
                    && quota.err().contains("end instances (kiln ls, kiln terminate) or ask AWS for a higher quota"), quota.err());
        }
        // A wrong region: this region has no such AMI.
        Kiln.Run region = new Kiln(dir.resolve("home")).env("KILN_EC2_ENDPOINT", moto.endpoint().toString())
                .env("KILN_REGION", "eu-west-3").env("KILN_PROVIDER", "ec2").run("launch", "--ami", ami);
        assertEquals(6, region.exitCode(), region.toString());
        assertTrue(region.err().contains("check the id and the region"), region.err());
        // No credentials and no region: said before anything is sent (instance metadata is off, so
        // the SDK's chain looks nowhere but this machine's environment and files).
        String key = System.clearProperty("aws.accessKeyId");
        String secret = System.clearProperty("aws.secretAccessKey");
        System.setProperty("aws.disableEc2Metadata", "true");
        try {
            Kiln.Run noCredentials = kiln.run("ls");
            assertEquals(3, noCredentials.exitCode(), noCredentials.toString());
            assertTrue(noCredentials.err().contains("no AWS credentials found; set AWS_PROFILE or AWS_ACCESS_KEY_ID"),
                    noCredentials.err());
            Kiln.Run noRegion = new Kiln(dir.resolve("home")).env("KILN_EC2_ENDPOINT", moto.endpoint().toString())
                    .env("KILN_PROVIDER", "ec2").run("ls");
            assertEquals(3, noRegion.exitCode(), noRegion.toString());
            assertTrue(noRegion.err().contains("no AWS region; set AWS_REGION or `region`"), noRegion.err());
        } finally {
            System.setProperty("aws.accessKeyId", key);
            System.setProperty("aws.secretAccessKey", secret);
            System.clearProperty("aws.disableEc2Metadata");
        }
    }

    @Test
    void clearErrorsForWhatCannotBeLaunched() {
        Kiln.Run noAmi = kiln.run("launch", "--ami", "ami-0000000000000dead", "--subnet", subnet);
        assertEquals(6, noAmi.exitCode(), noAmi.toString());
        assertTrue(noAmi.err().contains("ami-0000000000000dead"), noAmi.err());
        Kiln.Run noSnapshot = kiln.run("launch", "--ami", ami, "--subnet", subnet, "--volume", "sources:latest");
        assertEquals(6, noSnapshot.exitCode(), noSnapshot.toString());
        assertTrue(noSnapshot.err().contains("no Kiln snapshot of volume role 'sources' yet"), noSnapshot.err());
        Kiln.Run badVolume = kiln.run("launch", "--ami", ami, "--volume", "Builds=10");
        assertEquals(2, badVolume.exitCode(), badVolume.toString());
        assertTrue(badVolume.err().contains("must be ROLE:SIZE_GIB, ROLE:snap-ID, ROLE:latest or ROLE:vol-ID"), badVolume.err());
        assertEquals(0, new Ec2Fleet(ec2).active().size(), "nothing was launched");
    }
}
