package dev.kiln.e2e;

import com.google.protobuf.util.JsonFormat;
import dev.kiln.controller.pki.FleetCa;
import dev.kiln.proto.agent.v1.AgentState;
import dev.kiln.proto.agent.v1.Build;
import dev.kiln.proto.agent.v1.BuildState;
import dev.kiln.proto.agent.v1.ListBuildsResponse;
import dev.kiln.proto.agent.v1.StatusResponse;
import dev.kiln.testkit.FreePorts;
import dev.kiln.testkit.MetadataMock;
import dev.kiln.testkit.Prerequisites;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * What an instance does on boot, with a real agent process in ec2 mode reading its user data
 * through IMDSv2 from AWS's amazon-ec2-metadata-mock: the boot build (kiln.boot-build) runs once
 * per boot and is an ordinary build for `kiln builds` and `kiln logs`; a boot build whose volume
 * did not mount is not started and `kiln builds`/`kiln status` say why; and user data that cannot
 * be used leaves a clear error in the agent's output (the journal) and in `kiln status`, while the
 * lease still ends the instance (here power-off is `exit`, so the agent process ends by itself).
 */
class BootTest {

    static final String INSTANCE_ID = "i-0b00tb00tb00tb001";

    @TempDir
    Path dir;

    Kiln kiln;
    FleetCa ca;

    @BeforeEach
    void initController() throws Exception {
        Prerequisites.requireCommand(MetadataMock.BINARY_NAME, MetadataMock.INSTALL_HINT);
        kiln = new Kiln(dir.resolve("home"));
        Kiln.Run init = kiln.run("init");
        assertEquals(0, init.exitCode(), init.toString());
        ca = FleetCa.load(kiln.configDir().resolve("fleet-ca.crt"), kiln.configDir().resolve("fleet-ca.key"));
    }

    /** User data as `kiln launch` writes it (TLS inline, gRPC port), plus {@code more} under kiln:. */
    private String userData(int port, String more) {
        return Ec2ModeTest.userData(ca, INSTANCE_ID, port, more);
    }

    /** The image's settings as a test machine needs them: ec2 mode, a scratch state dir, the mock IMDS. */
    private Path settings(MetadataMock imds) throws Exception {
        Path file = dir.resolve("agent.yml");
        Files.writeString(file, """
                kiln:
                  mode: ec2
                  state-dir: '%s'
                  grpc:
                    host: 127.0.0.1
                    port: 7443
                  imds:
                    endpoint: %s
                    timeout: 20s
                """.formatted(dir.resolve("state"), imds.endpoint()));
        return file;
    }

    /** Never a real poweroff timer or power-off on a test machine: the agent process ends instead. */
    private static Map<String, String> testMachine(Map<String, String> more) {
        Map<String, String> env = new java.util.HashMap<>(Map.of("KILN_LEASE_BACKSTOP", "none", "KILN_LEASE_POWER_OFF", "exit"));
        env.putAll(more);
        return env;
    }

    private ListBuildsResponse builds(int port) throws Exception {
        Kiln.Run json = kiln.run("builds", "--agent", "127.0.0.1:" + port, "-o", "json");
        assertEquals(0, json.exitCode(), json.toString());
        ListBuildsResponse.Builder list = ListBuildsResponse.newBuilder();
        JsonFormat.parser().merge(json.out(), list);
        return list.build();
    }

    private StatusResponse status(int port) throws Exception {
        Kiln.Run json = kiln.run("status", "--agent", "127.0.0.1:" + port, "-o", "json");
        assertEquals(0, json.exitCode(), json.toString());
        StatusResponse.Builder status = StatusResponse.newBuilder();
        JsonFormat.parser().merge(json.out(), status);
        return status.build();
    }

    /**
     * Status's problems less the one an ec2-mode agent on a test machine rightly adds: its IMDS, the
     * mock on 127.0.0.1, is open to the build user, since no packet filter guards it here
     * (ImdsRootOnlyTest tests that check, with and without the image's filter).
     */
    private static List<String> besidesOpenImds(StatusResponse status) {
        List<String> imds = status.getProblemsList().stream()
                .filter(p -> p.startsWith("IMDS is not root-only: ") || p.startsWith("cannot check that IMDS is root-only: "))
                .toList();
        assertEquals(1, imds.size(), "one IMDS problem on a test machine: " + status.getProblemsList());
        return status.getProblemsList().stream().filter(p -> !imds.contains(p)).toList();
    }

    /** `kiln status` has a row FIELD whose value starts with {@code value}. */
    private static void assertRow(String table, String field, String value) {
        assertTrue(table.matches("(?s)(.*\n)?" + field + "\\s+" + java.util.regex.Pattern.quote(value) + ".*"), table);
    }

    @Test
    void theBootBuildRunsOnceAfterBootAndKilnBuildsShowsItWithItsOutput() throws Exception {
        Path tree = LocalFleet.workTree(dir, "vibes");
        int port = FreePorts.loopbackPort();
        String bootBuild = """
                  lease:
                    ttl: 1h
                  boot-build:
                    work-tree: %s
                    command: ["sh", "-c", "echo boot build says hello in $PWD; echo ran >> runs; sleep 2; echo done"]
                    labels: {trigger: boot}
                """.formatted(tree);
        try (MetadataMock imds = MetadataMock.builder().instanceId(INSTANCE_ID).userData(userData(port, bootBuild)).start()) {
            String id;
            try (AgentProcess agent = AgentProcess.start(settings(imds), testMachine(Map.of()))) {
                assertEquals(port, agent.awaitListening(Duration.ofSeconds(90)), agent.output());
                List<Build> listed = builds(port).getBuildsList();
                assertEquals(1, listed.size(), listed.toString());
                Build b = listed.get(0);
                id = b.getId();
                assertEquals(Map.of("trigger", "boot", "kiln:boot", "true"), b.getRequest().getLabelsMap());
                assertEquals(tree.toString(), b.getRequest().getWorkTree());
                assertTrue(agent.output().contains("boot build: started " + id + " in " + tree), agent.output());

                // The boot build keeps the agent busy like any build.
                StatusResponse busy = status(port);
                if (busy.getCurrentBuild().getId().equals(id)) {
                    assertTrue(busy.getBusyReasonsList().contains("build " + id + " running"), busy.toString());
                }

                // `kiln logs -f` follows it to its end and exits with its status; the table then says succeeded.
                Kiln.Run logs = kiln.run("logs", "--agent", "127.0.0.1:" + port, "-f", id);
                assertEquals(0, logs.exitCode(), logs.toString());
                assertEquals("boot build says hello in " + tree + "\ndone\n", logs.out());
                Kiln.Run table = kiln.run("builds", "--agent", "127.0.0.1:" + port);
                assertEquals(0, table.exitCode(), table.toString());
                assertTrue(table.out().matches("(?s).*" + id + "\\s+succeeded\\s+0\\s.*" + tree + "\n.*"), table.out());
                assertEquals("", table.err(), "no boot build errors");
            }

            // systemd restarts the agent in the same boot: the boot build is found, not run again.
            try (AgentProcess again = AgentProcess.start(settings(imds), testMachine(Map.of()))) {
                assertEquals(port, again.awaitListening(Duration.ofSeconds(90)), again.output());
                List<Build> listed = builds(port).getBuildsList();
                assertEquals(List.of(id), listed.stream().map(Build::getId).toList());
                assertEquals(BuildState.BUILD_STATE_SUCCEEDED, listed.get(0).getState());
                assertEquals("ran\n", Files.readString(tree.resolve("runs")), "the boot build ran once");
                assertTrue(again.output().contains("boot build: already started in this boot as " + id + " (succeeded);"
                        + " not starting it again"), again.output());
            }
        }
    }

    @Test
    void aBootBuildWhoseVolumeDidNotMountIsNotStartedAndKilnSaysWhy() throws Exception {
        int port = FreePorts.loopbackPort();
        Path mount = dir.resolve("mnt/builds");
        String more = """
                  lease:
                    ttl: 1h
                  volumes:
                    mounts:
                      - volume-id: vol-0badc0ffee0000001
                        mount-point: %s
                        wait: 1s
                  boot-build:
                    work-tree: %s
                """.formatted(mount, mount.resolve("vibes"));
        try (MetadataMock imds = MetadataMock.builder().instanceId(INSTANCE_ID).userData(userData(port, more)).start();
             AgentProcess agent = AgentProcess.start(settings(imds), testMachine(Map.of()))) {
            assertEquals(port, agent.awaitListening(Duration.ofSeconds(90)), agent.output());
            String why = "boot build in " + mount.resolve("vibes") + " not started: its work tree is on " + mount
                    + ", whose boot mount kiln.volumes.mounts[0] (";
            assertTrue(agent.output().contains(why), agent.output());

            Kiln.Run table = kiln.run("builds", "--agent", "127.0.0.1:" + port);
            assertEquals(0, table.exitCode(), table.toString());
            assertTrue(table.err().startsWith("kiln: " + why), table.err());
            assertTrue(table.err().contains("fix the volume (kiln volumes, kiln mount), then run the build with kiln build"),
                    table.err());
            assertEquals(List.of(), builds(port).getBuildsList());

            Kiln.Run text = kiln.run("status", "--agent", "127.0.0.1:" + port);
            assertEquals(0, text.exitCode(), text.toString());
            assertRow(text.out(), "problem", "boot mount kiln.volumes.mounts[0] (vol-0badc0ffee0000001 at " + mount + ") failed");
            assertRow(text.out(), "problem", why);
            assertTrue(text.out().matches("(?s).*state\\s+ready\n.*"), "a failed boot mount does not degrade the agent:\n"
                    + text.out());
        }
    }

    // ---------------------------------------------------------------- broken user data

    @Test
    void userDataThatIsNotYamlIsReportedAndTheFallbackLeaseStillEndsTheInstance() throws Exception {
        // Nothing in it can be used, not even the TLS material: the agent cannot be reached and says so.
        try (MetadataMock imds = MetadataMock.builder().instanceId(INSTANCE_ID)
                .userData("kiln:\n  lease:\n    ttl: 2h\n  grpc: [7443\n").start();
             AgentProcess agent = AgentProcess.start(settings(imds), testMachine(Map.of("KILN_LEASE_FALLBACK_TTL", "5s")))) {
            int code = agent.awaitExit(Duration.ofSeconds(120));
            String out = agent.output();
            assertEquals(0, code, "the lease ended it (power-off: exit); output:\n" + out);
            assertTrue(out.contains("kiln-agent: configuration error: EC2 user data is not valid YAML: "), out);
            assertTrue(out.matches("(?s).*not valid YAML: .* at line \\d+, column \\d+.*"), out);
            assertTrue(out.contains("the EC2 user data cannot be used, so the agent runs degraded: no boot mounts, no boot"
                    + " build, no SSH; it ends the instance PT5S after its first start (kiln.lease.fallback-ttl: no usable"
                    + " kiln.lease.ttl). Fix the user data"), out);
            assertTrue(out.contains("cannot serve gRPC, so kiln status cannot reach this agent: kiln.tls.cert is not set"), out);
            assertTrue(out.contains("powering off"), out);
        }
    }

    @Test
    void anInstanceLaunchedWithoutUserDataStillEndsOnTheFallbackLease() throws Exception {
        try (MetadataMock imds = MetadataMock.builder().instanceId(INSTANCE_ID).start();
             AgentProcess agent = AgentProcess.start(settings(imds), testMachine(Map.of("KILN_LEASE_FALLBACK_TTL", "5s")))) {
            int code = agent.awaitExit(Duration.ofSeconds(120));
            String out = agent.output();
            assertEquals(0, code, "the lease ended it (power-off: exit); output:\n" + out);
            assertTrue(out.contains("kiln-agent: configuration error: the EC2 user data has no kiln settings (kiln launch"
                    + " writes them): "), out);
            assertTrue(out.contains("it ends the instance PT5S after its first start (kiln.lease.fallback-ttl"), out);
            assertTrue(out.contains("powering off"), out);
        }
    }

    @Test
    void anUnknownKeyInUserDataShowsInKilnStatusAndTheUserDatasLeaseStillEndsTheInstance() throws Exception {
        int port = FreePorts.loopbackPort();
        try (MetadataMock imds = MetadataMock.builder().instanceId(INSTANCE_ID)
                .userData(userData(port, "  lease:\n    ttl: 25s\n  volumes:\n    mount: /data\n")).start();
             AgentProcess agent = AgentProcess.start(settings(imds), testMachine(Map.of()))) {
            // The user data's TLS and gRPC settings are valid on their own, so it is reachable where expected.
            assertEquals(port, agent.awaitListening(Duration.ofSeconds(90)), agent.output());
            String problem = "unknown setting 'kiln.volumes.mount' in EC2 user data; did you mean 'kiln.volumes.mounts'?";
            assertTrue(agent.output().contains("kiln-agent: configuration error: " + problem), agent.output());

            StatusResponse status = status(port);
            assertEquals(AgentState.AGENT_STATE_DEGRADED, status.getState());
            assertEquals(List.of(problem), besidesOpenImds(status));
            assertTrue(status.getLease().hasDeadline(), status.toString());
            Kiln.Run text = kiln.run("status", "--agent", "127.0.0.1:" + port);
            assertTrue(text.out().matches("(?s).*state\\s+degraded\n.*"), text.out());
            assertRow(text.out(), "problem", problem);

            assertEquals(0, agent.awaitExit(Duration.ofSeconds(120)), "the user data's 25 s lease ended it:\n" + agent.output());
        }
    }

    @Test
    void aBadLeaseValueFallsBackToTheImagesLeaseAndShowsInKilnStatus() throws Exception {
        int port = FreePorts.loopbackPort();
        try (MetadataMock imds = MetadataMock.builder().instanceId(INSTANCE_ID)
                .userData(userData(port, "  lease:\n    ttl: 2 hours\n")).start();
             // The image's agent.yml has no ttl; kiln.lease.fallback-ttl (30m by default) is shortened for the test.
             AgentProcess agent = AgentProcess.start(settings(imds), testMachine(Map.of("KILN_LEASE_FALLBACK_TTL", "25s")))) {
            assertEquals(port, agent.awaitListening(Duration.ofSeconds(90)), agent.output());
            String problem = "invalid value for setting 'kiln.lease.ttl' in EC2 user data: '2 hours' is not a duration; write e.g. 30s, 5m, 1h30m or 2d"
                    + " (expected a positive duration such as 2h)";
            assertTrue(agent.output().contains("kiln-agent: configuration error: " + problem), agent.output());
            assertTrue(agent.output().contains("it ends the instance PT25S after its first start (kiln.lease.fallback-ttl"),
                    agent.output());

            StatusResponse status = status(port);
            assertEquals(AgentState.AGENT_STATE_DEGRADED, status.getState());
            assertEquals(List.of(problem), besidesOpenImds(status));
            // A degraded agent's lease cannot be extended: fix the user data instead.
            Kiln.Run extend = kiln.run("extend", "--agent", "127.0.0.1:" + port, "1h");
            assertEquals(5, extend.exitCode(), extend.toString());

            assertEquals(0, agent.awaitExit(Duration.ofSeconds(120)), "the fallback lease ended it:\n" + agent.output());
        }
    }
}
