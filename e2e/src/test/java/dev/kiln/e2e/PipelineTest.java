package dev.kiln.e2e;

import com.google.protobuf.util.JsonFormat;
import dev.kiln.proto.agent.v1.Build;
import dev.kiln.proto.agent.v1.BuildState;
import dev.kiln.proto.agent.v1.ListBuildsResponse;
import dev.kiln.testkit.MotoServer;
import dev.kiln.testkit.Prerequisites;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import software.amazon.awssdk.services.ec2.Ec2Client;
import software.amazon.awssdk.services.ec2.model.Snapshot;
import software.amazon.awssdk.services.ec2.model.Tag;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The music collector's whole job, as the user runs it with the real `kiln`, against moto plus
 * real agents on simulated machines (see {@link FleetSimulator#withMachines}): every volume is a
 * real ext4 filesystem on a loop device, every snapshot a copy taken while the agent holds it
 * frozen, every build real tup and encoders, every transfer real rsync over the agents' SSH.
 *
 * <ol>
 *   <li>an ingest worker with a new sources volume takes the collection by `kiln push`; its
 *       sources volume is snapshotted and the worker terminated;</li>
 *   <li>a worker restores sources (read-only) and gets a new builds volume, joined by an overlay;
 *       `kiln build` builds every profile; the builds volume is snapshotted with --keep 2; the
 *       worker's lease ends it;</li>
 *   <li>a second worker restores both from their newest snapshots; one track's title changes and
 *       is pushed; only that track is rebuilt (once per profile); builds is snapshotted again;</li>
 *   <li>a server restores the newest builds snapshot and serves it: `kiln pull` of the Opus
 *       profile is byte-identical to what the worker built.</li>
 * </ol>
 */
class PipelineTest {

    static final Path EXAMPLE = Path.of("../examples/vibes").toAbsolutePath().normalize();

    @TempDir
    Path dir;

    MotoServer moto;
    FleetSimulator simulator;

    @AfterEach
    void tearDown() throws Exception {
        if (simulator != null) {
            simulator.close();
        }
        if (moto != null) {
            moto.close();
        }
    }

    @Test
    void pushBuildSnapshotRelaunchRebuildOneTrackAndServeTheResult() throws Exception {
        Prerequisites.requireRoot("loop devices, mounts and a mount namespace per simulated instance");
        Prerequisites.requireCommand("unshare", "apt-get install util-linux");
        for (String tool : List.of("tup", "sox", "flac", "lame", "oggenc", "opusenc", "rsync")) {
            Prerequisites.requireCommand(tool, "apt-get install tup fuse3 sox flac lame vorbis-tools opus-tools rsync");
        }
        moto = MotoServer.start();
        Ec2Client ec2 = moto.ec2Client();
        String subnet = MotoWorld.loopbackSubnet(ec2, 1, null).subnetId();
        String base = ec2.describeImages(r -> r.maxResults(5)).images().get(0).imageId();
        String ami = ec2.createImage(c -> c.instanceId(ec2.runInstances(r -> r.imageId(base).minCount(1).maxCount(1))
                .instances().get(0).instanceId()).name("kiln-agent-pipeline")).imageId();
        simulator = FleetSimulator.withMachines(ec2, moto.endpoint(), dir.resolve("hardware"));
        System.setProperty("aws.accessKeyId", "testing");
        System.setProperty("aws.secretAccessKey", "testing");
        Kiln kiln = new Kiln(dir.resolve("home")).env("KILN_EC2_ENDPOINT", simulator.ec2Endpoint().toString())
                .env("KILN_REGION", "us-east-1").env("KILN_ADDRESS", "private").env("KILN_PROVIDER", "ec2");
        assertEquals(0, kiln.run("init").exitCode());

        Path music = dir.resolve("vibes");
        Process gen = new ProcessBuilder(EXAMPLE.resolve("generate").toString(), music.toString(), "--small")
                .redirectErrorStream(true).start();
        gen.getInputStream().readAllBytes();
        assertTrue(gen.waitFor(120, TimeUnit.SECONDS) && gen.exitValue() == 0, "generate");

        // 1. Ingest: a new sources volume takes the collection.
        String ingest = launch(kiln, "--ami", ami, "--subnet", subnet, "--volume", "sources:1", "--ttl", "20m", "--label", "step=ingest");
        Kiln.Run push = kiln.run("push", music.toString(), ingest);
        assertEquals(0, push.exitCode(), push.toString());
        Kiln.Run sourcesSnap = kiln.run("snapshot", ingest, "sources", "--keep", "2");
        assertEquals(0, sourcesSnap.exitCode(), sourcesSnap.toString());
        assertTrue(sourcesSnap.err().contains("froze /mnt/sources"), sourcesSnap.err());
        assertEquals(0, kiln.run("terminate", ingest).exitCode());
        assertEquals(0, simulator.booted(ingest).agent().awaitExit(Duration.ofSeconds(60)));

        // 2. A worker: sources restored read-only, a new builds volume, an overlay work tree; its lease ends it.
        String worker = launch(kiln, "--ami", ami, "--subnet", subnet, "--type", "c5.2xlarge", "--volume", "sources:latest",
                "--volume", "builds:1", "--ttl", "100s", "--label", "step=build");
        Kiln.Run volumes = kiln.run("volumes", "--agent", worker);
        assertTrue(volumes.out().matches("(?s).*/mnt/sources\\s+mounted.*") && volumes.out().matches("(?s).*/srv/work\\s+mounted.*"),
                volumes.toString());
        Kiln.Run full = kiln.run("build", "--agent", worker, "/srv/work/vibes", "--profiles-dir", EXAMPLE.resolve("profiles").toString());
        assertEquals(0, full.exitCode(), full.toString());
        Build first = lastBuild(kiln, worker);
        assertEquals(BuildState.BUILD_STATE_SUCCEEDED, first.getState());
        assertTrue(first.getProgress().getTotal() > 32, "8 tracks x 4 profiles plus playlists: " + first.getProgress());
        Kiln.Run buildsSnap = kiln.run("snapshot", worker, "builds", "--keep", "2", "--build", first.getId());
        assertEquals(0, buildsSnap.exitCode(), buildsSnap.toString());
        assertEquals(0, simulator.booted(worker).agent().awaitExit(Duration.ofSeconds(150)), "the lease ended the worker");
        assertTrue(simulator.booted(worker).agent().output().contains("unmount"), simulator.booted(worker).agent().output());

        // 3. Another worker from the newest snapshots: one changed title rebuilds one track per profile.
        String again = launch(kiln, "--ami", ami, "--subnet", subnet, "--volume", "sources:latest", "--volume", "builds:latest",
                "--ttl", "20m", "--label", "step=rebuild");
        Path title;
        try (Stream<Path> albums = Files.list(music.resolve("aurora-drift"))) {
            Path album = albums.filter(Files::isDirectory).sorted().findFirst().orElseThrow();
            try (Stream<Path> tracks = Files.list(album)) {
                title = tracks.filter(p -> p.toString().endsWith(".TITLE")).sorted().findFirst().orElseThrow();
            }
        }
        Files.writeString(title, "Ingested Again (Remix)\n");
        Kiln.Run change = kiln.run("push", music.toString(), again);
        assertEquals(0, change.exitCode(), change.toString());
        assertTrue(change.err().contains("pushed 1 changed file(s)"), change.err());
        Kiln.Run rebuild = kiln.run("build", "--agent", again, "/srv/work/vibes", "--profiles-dir", EXAMPLE.resolve("profiles").toString());
        assertEquals(0, rebuild.exitCode(), rebuild.toString());
        Build second = lastBuild(kiln, again);
        assertEquals(4, second.getProgress().getTotal(), "one track re-encoded in each of 4 profiles:\n" + rebuild.out());
        Path fromWorker = dir.resolve("pulled-from-worker");
        Kiln.Run pullWorker = kiln.run("pull", again, fromWorker.toString(), "--path", "/outputs/vibes/build-opus");
        assertEquals(0, pullWorker.exitCode(), pullWorker.toString());
        Kiln.Run snapAgain = kiln.run("snapshot", again, "builds", "--keep", "2", "--build", second.getId(), "--wait");
        assertEquals(0, snapAgain.exitCode(), snapAgain.toString());
        assertTrue(snapAgain.err().matches("(?s).*kiln: snap-[0-9a-f]+ completed 100%.*"), snapAgain.err());
        List<Snapshot> builds = ec2.describeSnapshots(r -> r.filters(f -> f.name("tag:kiln:volume-role").values("builds")))
                .snapshots();
        assertEquals(2, builds.size(), "two builds snapshots: " + builds);
        assertTrue(builds.stream().anyMatch(s -> s.tags().contains(Tag.builder().key("kiln:build-id").value(second.getId()).build())));
        assertEquals(0, kiln.run("terminate", again).exitCode());
        assertEquals(0, simulator.booted(again).agent().awaitExit(Duration.ofSeconds(60)));

        // 4. A small server from the newest builds snapshot serves the music.
        String server = launch(kiln, "--role", "server", "--ami", ami, "--subnet", subnet, "--type", "t3.nano",
                "--volume", "builds:latest", "--ttl", "20m");
        Path pulled = dir.resolve("pulled-from-server");
        Kiln.Run pull = kiln.run("pull", server, pulled.toString(), "--path", "/outputs/vibes/build-opus");
        assertEquals(0, pull.exitCode(), pull.toString());
        Map<String, byte[]> served = files(pulled);
        Map<String, byte[]> built = files(fromWorker);
        // The worker's overlay also shows the profile's tup.config from the sources volume; the builds volume has only outputs.
        assertTrue(built.remove("tup.config") != null, built.keySet().toString());
        assertEquals(built.keySet(), served.keySet());
        built.forEach((name, bytes) -> assertArrayEquals(bytes, served.get(name), name + " differs"));
        assertTrue(served.keySet().stream().filter(n -> n.endsWith(".opus")).count() >= 8, served.keySet().toString());
        assertTrue(served.values().stream().anyMatch(b -> new String(b, StandardCharsets.ISO_8859_1).contains("Ingested Again (Remix)")),
                "the changed title is in the served Opus file");
        assertNull(simulator.failure());
    }

    private String launch(Kiln kiln, String... args) {
        String[] argv = Stream.concat(Stream.of("launch", "--wait", "2m"), Stream.of(args)).toArray(String[]::new);
        Kiln.Run run = kiln.run(argv);
        assertEquals(0, run.exitCode(), run.toString());
        return run.out().lines().skip(1).findFirst().orElseThrow().split("\\s+")[0];
    }

    private static Build lastBuild(Kiln kiln, String instance) throws IOException {
        Kiln.Run list = kiln.run("builds", "--agent", instance, "-o", "json", "--limit", "1");
        assertEquals(0, list.exitCode(), list.toString());
        ListBuildsResponse.Builder b = ListBuildsResponse.newBuilder();
        JsonFormat.parser().merge(list.out(), b);
        return b.getBuilds(0);
    }

    private static Map<String, byte[]> files(Path root) throws IOException {
        Map<String, byte[]> out = new TreeMap<>();
        try (Stream<Path> all = Files.walk(root)) {
            for (Path p : all.filter(Files::isRegularFile).toList()) {
                out.put(root.relativize(p).toString(), Files.readAllBytes(p));
            }
        }
        return out;
    }
}
