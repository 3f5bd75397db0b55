package dev.kiln.e2e;

import dev.kiln.testkit.MotoServer;
import dev.kiln.testkit.Prerequisites;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import software.amazon.awssdk.services.ec2.Ec2Client;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The remote dev box on EC2 (moto plus simulated machines: each EBS volume a loop device the
 * agent sees as a Nitro NVMe device, kept after its instance ends as EBS keeps it): a kept
 * `data` volume is unmounted by `kiln terminate` through the agent, stays, and a new instance
 * that attaches it by id serves the file pushed onto it before.
 */
class Ec2KeptVolumeTest {

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

    String launch(Kiln kiln, String... args) {
        String[] argv = java.util.stream.Stream.concat(java.util.stream.Stream.of("launch", "--wait", "2m"),
                java.util.stream.Stream.of(args)).toArray(String[]::new);
        Kiln.Run run = kiln.run(argv);
        assertEquals(0, run.exitCode(), run.toString());
        return MotoWorld.launchedId(run);
    }

    @Test
    void aKeptVolumeSurvivesTerminateAndAttachesAgainWithItsFiles() throws Exception {
        Prerequisites.requireRoot("loop devices, mounts and a mount namespace per simulated instance");
        Prerequisites.requireCommand("unshare", "apt-get install util-linux");
        Prerequisites.requireCommand("rsync", "apt-get install rsync");
        moto = MotoServer.start();
        Ec2Client ec2 = moto.ec2Client();
        MotoWorld.sdkCredentials();
        String subnet = MotoWorld.loopbackSubnet(ec2, 4, "us-east-1a").subnetId();
        String ami = MotoWorld.agentImage(ec2, "kiln-agent-devbox");
        simulator = FleetSimulator.withMachines(ec2, moto.endpoint(), dir.resolve("hardware"));
        Kiln kiln = new Kiln(dir.resolve("home")).env("KILN_EC2_ENDPOINT", simulator.ec2Endpoint().toString())
                .env("KILN_REGION", "us-east-1").env("KILN_ADDRESS", "private").env("KILN_PROVIDER", "ec2");
        assertEquals(0, kiln.run("init").exitCode());

        String a = launch(kiln, "--ami", ami, "--subnet", subnet, "--role", "dev", "--volume", "data:1", "--keep-volume", "data");
        String data = ec2.describeVolumes(r -> r.filters(f -> f.name("attachment.instance-id").values(a),
                f -> f.name("tag:kiln:volume-role").values("data"))).volumes().get(0).volumeId();
        Path notes = Files.createDirectories(dir.resolve("notes"));
        Files.writeString(notes.resolve("todo.txt"), "kept across instances\n");
        Kiln.Run push = kiln.run("push", notes.toString(), a);
        assertEquals(0, push.exitCode(), push.toString());

        Kiln.Run term = kiln.run("terminate", a);
        assertEquals(0, term.exitCode(), term.toString());
        assertTrue(term.err().contains("kiln: unmounted /mnt/data (synced, confirmed) before " + a + " ends"), term.err());
        assertTrue(term.err().contains(data + " (data): kept: marked to keep"), term.err());
        assertTrue(term.err().contains("attach it again with: kiln launch --provider ec2 --role dev --volume data:" + data), term.err());
        assertEquals("available", ec2.describeVolumes(r -> r.volumeIds(data)).volumes().get(0).stateAsString());

        String b = launch(kiln, "--ami", ami, "--subnet", subnet, "--role", "dev", "--volume", "data:" + data);
        Path back = dir.resolve("back");
        Kiln.Run pull = kiln.run("pull", b, back.toString(), "--path", "/outputs/notes");
        assertEquals(0, pull.exitCode(), pull.toString());
        assertEquals("kept across instances\n", Files.readString(back.resolve("todo.txt")));
        Kiln.Run ended = kiln.run("terminate", b);
        assertEquals(0, ended.exitCode(), ended.toString());
        assertTrue(ended.err().contains(data + " (data): kept: marked to keep"), ended.err());
    }
}
