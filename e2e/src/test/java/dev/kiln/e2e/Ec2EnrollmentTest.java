package dev.kiln.e2e;

import dev.kiln.testkit.MotoServer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import software.amazon.awssdk.services.ec2.Ec2Client;
import software.amazon.awssdk.services.ec2.model.Instance;
import software.amazon.awssdk.services.ec2.model.InstanceAttributeName;
import software.amazon.awssdk.services.ec2.model.Tag;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Base64;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * `kiln launch` and `kiln enroll` on the EC2 provider (moto, with real agents booted from the
 * user data moto holds, {@link FleetSimulator}): user data carries a bootstrap certificate only,
 * and the agent ends up serving a certificate for its own key.
 */
class Ec2EnrollmentTest {

    static MotoServer moto;
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
        MotoWorld.sdkCredentials();
        subnet = MotoWorld.loopbackSubnet(ec2, 2, null).subnetId();
        ami = MotoWorld.agentImage(ec2, "kiln-agent-2026-12-07");
    }

    @AfterAll
    static void stopMoto() {
        if (moto != null) {
            moto.close();
        }
    }

    @BeforeEach
    void setUp() {
        kiln = new Kiln(dir.resolve("home")).env("KILN_EC2_ENDPOINT", moto.endpoint().toString())
                .env("KILN_REGION", "us-east-1").env("KILN_ADDRESS", "private").env("KILN_PROVIDER", "ec2");
        assertEquals(0, kiln.run("init").exitCode());
        simulator = new FleetSimulator(ec2, dir.resolve("instances"));
    }

    @AfterEach
    void tearDown() throws Exception {
        simulator.close();
        MotoWorld.terminateKilnInstances(ec2);
    }

    private String launchedId(Kiln.Run launch) {
        return MotoWorld.launchedId(launch);
    }

    private Instance instance(String id) {
        return ec2.describeInstances(r -> r.instanceIds(id)).reservations().get(0).instances().get(0);
    }

    private String certName(Instance i) {
        return i.tags().stream().filter(t -> t.key().equals("kiln:cert-name")).map(Tag::value).findFirst().orElseThrow();
    }

    private Kiln.Run status(Instance i) {
        return kiln.run("status", "--agent", i.privateIpAddress() + ":7443", "--tls-server-name", certName(i));
    }

    @Test
    void launchEnrollsTheAgentsOwnKeyAndUserDataHoldsOnlyTheBootstrapKey() throws Exception {
        Kiln.Run launch = kiln.run("launch", "--ami", ami, "--subnet", subnet, "--wait", "2m");
        assertEquals(0, launch.exitCode(), launch.toString());
        assertTrue(launch.err().contains("enrolled the agent's own key"), launch.err());
        Instance i = instance(launchedId(launch));
        String userData = new String(Base64.getDecoder().decode(ec2.describeInstanceAttribute(r -> r.instanceId(i.instanceId())
                .attribute(InstanceAttributeName.USER_DATA)).userData().value()), StandardCharsets.UTF_8);
        assertEquals(1, userData.split("BEGIN PRIVATE KEY", -1).length - 1, userData);

        FleetSimulator.Booted booted = simulator.awaitBooted(i.instanceId(), Duration.ofSeconds(60));
        Path own = booted.stateDir().resolve("state/tls/agent.key");
        assertTrue(Files.exists(own), "the agent's key is on the instance");
        assertTrue(Files.exists(booted.stateDir().resolve("state/tls/agent.crt")), "and its enrolled certificate");
        assertTrue(!userData.replaceAll("\\s", "").contains(Files.readString(own)
                .replaceAll("-----[A-Z ]+-----", "").replaceAll("\\s", "")), "the agent's key is not in user data");
        Kiln.Run status = status(i);
        assertEquals(0, status.exitCode(), status.toString());
    }

    @Test
    void anInstanceLaunchedWithoutWaitingIsEnrolledByKilnEnroll() throws Exception {
        Kiln.Run launch = kiln.run("launch", "--ami", ami, "--subnet", subnet, "--no-wait");
        assertEquals(0, launch.exitCode(), launch.toString());
        Instance launched = instance(launchedId(launch));
        simulator.awaitBooted(launched.instanceId(), Duration.ofSeconds(60));
        Instance i = instance(launched.instanceId());

        Kiln.Run before = status(i);
        assertNotEquals(0, before.exitCode(), before.toString());
        assertTrue(before.err().contains("bootstrap certificate"), before.toString());

        Kiln.Run enroll = kiln.run("enroll", i.instanceId());
        assertEquals(0, enroll.exitCode(), enroll.toString());
        assertTrue(enroll.err().contains("enrolled the agent's own key on " + i.instanceId()), enroll.err());
        Kiln.Run after = status(i);
        assertEquals(0, after.exitCode(), after.toString());
        Kiln.Run again = kiln.run("enroll", i.instanceId());
        assertEquals(0, again.exitCode(), again.toString());
        assertTrue(again.err().contains("is enrolled already"), again.err());
    }
}
