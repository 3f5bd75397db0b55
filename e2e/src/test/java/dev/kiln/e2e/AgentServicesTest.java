package dev.kiln.e2e;

import com.google.protobuf.util.JsonFormat;
import dev.kiln.controller.pki.FleetCa;
import dev.kiln.proto.agent.v1.BuildState;
import dev.kiln.proto.agent.v1.Service;
import dev.kiln.proto.agent.v1.ServiceState;
import dev.kiln.proto.agent.v1.StatusResponse;
import dev.kiln.testkit.FreePorts;
import dev.kiln.testkit.MetadataMock;
import dev.kiln.testkit.Prerequisites;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.function.Predicate;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A real agent process in ec2 mode whose user data (from amazon-ec2-metadata-mock) has labels, a
 * boot script and services, seen through today's `kiln status -o json` and `kiln logs`: the boot
 * script runs with the labels, the service serves what it made, Status reports both, their logs
 * are readable as "boot" and "service:NAME", and `kiln stop` stops the service before the agent
 * ends; a failing boot script keeps the service from starting and Status says why.
 */
class AgentServicesTest {

    static final String INSTANCE_ID = "i-05e7v1ce5e7v1ce01";

    @TempDir
    Path dir;

    Kiln kiln;
    FleetCa ca;

    @BeforeEach
    void initController() throws Exception {
        Prerequisites.requireCommand(MetadataMock.BINARY_NAME, MetadataMock.INSTALL_HINT);
        Prerequisites.requireCommand("python3", "apt-get install python3");
        kiln = new Kiln(dir.resolve("home"));
        Kiln.Run init = kiln.run("init");
        assertEquals(0, init.exitCode(), init.toString());
        ca = FleetCa.load(kiln.configDir().resolve("fleet-ca.crt"), kiln.configDir().resolve("fleet-ca.key"));
        // The build user passes through the test's directory to the agent's work directory.
        Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwx--x--x"));
    }

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

    private StatusResponse status(int port) throws Exception {
        Kiln.Run json = kiln.run("status", "--agent", "127.0.0.1:" + port, "-o", "json");
        assertEquals(0, json.exitCode(), json.toString());
        StatusResponse.Builder status = StatusResponse.newBuilder();
        JsonFormat.parser().merge(json.out(), status);
        return status.build();
    }

    private StatusResponse awaitStatus(int port, Predicate<StatusResponse> until, String what) throws Exception {
        Instant giveUp = Instant.now().plusSeconds(60);
        StatusResponse s = status(port);
        while (!until.test(s)) {
            if (!Instant.now().isBefore(giveUp)) {
                Kiln.Run boot = kiln.run("logs", "--agent", "127.0.0.1:" + port, "boot");
                throw new AssertionError(what + " did not happen within 60 s: " + s + "\nthe boot script's log: " + boot);
            }
            Thread.sleep(200);
            s = status(port);
        }
        return s;
    }

    private static Map<String, String> testMachine() {
        return Map.of("KILN_LEASE_BACKSTOP", "none", "KILN_LEASE_POWER_OFF", "exit");
    }

    @Test
    void theBootScriptPreparesWhatTheServiceServesAndKilnSeesBoth() throws Exception {
        int port = FreePorts.loopbackPort();
        int web = FreePorts.loopbackPort();
        int app = FreePorts.loopbackPort();
        String more = """
                  lease:
                    ttl: 1h
                  labels: {pr: "3012", branch: main}
                  boot-script: |
                    set -e
                    echo "preview of $KILN_LABEL_BRANCH (pr $KILN_LABEL_PR)"
                    mkdir -p site
                    echo "branch $KILN_LABEL_BRANCH" > site/index.html
                  services:
                    - name: web
                      port: %d
                      path: /index.html
                      command: exec python3 -m http.server %d --bind 127.0.0.1 --directory site
                    - name: app
                      port: %d
                """.formatted(web, web, app);
        try (MetadataMock imds = MetadataMock.builder().instanceId(INSTANCE_ID)
                .userData(Ec2ModeTest.userData(ca, INSTANCE_ID, port, more)).start();
             AgentProcess agent = AgentProcess.start(settings(imds), testMachine())) {
            assertEquals(port, agent.awaitListening(Duration.ofSeconds(90)), agent.output());
            StatusResponse s = awaitStatus(port, x -> x.getServicesCount() == 2
                    && x.getServices(0).getState() == ServiceState.SERVICE_STATE_RUNNING, "the service running");
            assertEquals(Map.of("pr", "3012", "branch", "main"), s.getLabelsMap());
            assertEquals(BuildState.BUILD_STATE_SUCCEEDED, s.getBootScript().getState());
            assertEquals("true", s.getBootScript().getRequest().getLabelsMap().get("kiln:boot"));
            Service w = s.getServices(0);
            assertEquals("web", w.getName());
            assertEquals(web, w.getPort());
            assertEquals("/index.html", w.getPath());
            assertTrue(w.getPortOpen());
            assertTrue(w.getPid() > 0);
            assertFalse(w.getKeepsAlive());
            Service a = s.getServices(1);
            assertEquals(ServiceState.SERVICE_STATE_EXTERNAL, a.getState());
            assertFalse(a.getPortOpen(), "nothing serves the declared-only port");
            assertEquals(List.of(), s.getProblemsList().stream().filter(p -> p.startsWith("boot script")).toList());

            HttpResponse<String> page = HttpClient.newHttpClient().send(HttpRequest.newBuilder(
                    URI.create("http://127.0.0.1:" + web + "/index.html")).build(), HttpResponse.BodyHandlers.ofString());
            assertEquals("branch main\n", page.body());

            Kiln.Run boot = kiln.run("logs", "--agent", "127.0.0.1:" + port, "boot");
            assertEquals(0, boot.exitCode(), boot.toString());
            assertEquals("preview of main (pr 3012)\n", boot.out());
            // Following the boot script's log ends with it, and with its status.
            Kiln.Run followed = kiln.run("logs", "-f", "--agent", "127.0.0.1:" + port, "boot");
            assertEquals(0, followed.exitCode(), followed.toString());
            assertEquals("preview of main (pr 3012)\n", followed.out());
            assertTrue(followed.err().contains("kiln: boot script succeeded (exit 0)"), followed.toString());
            Kiln.Run serviceLog = kiln.run("logs", "--agent", "127.0.0.1:" + port, "service:web");
            assertEquals(0, serviceLog.exitCode(), serviceLog.toString());
            assertTrue(serviceLog.out().startsWith("kiln: service web started (pid " + w.getPid() + ")\n"), serviceLog.out());
            Kiln.Run fromOffset = kiln.run("logs", "--agent", "127.0.0.1:" + port, "--from", "6", "service:web");
            assertEquals(0, fromOffset.exitCode(), fromOffset.toString());
            // The log only grows: the copy from byte 6 holds what the first copy had from there on.
            assertTrue(fromOffset.out().startsWith(serviceLog.out().substring(6)), fromOffset.out());
            Kiln.Run none = kiln.run("logs", "--agent", "127.0.0.1:" + port, "service:api");
            assertTrue(none.err().contains("no service 'api' on this agent (its services: web, app)"), none.toString());

            Kiln.Run stop = kiln.run("stop", "--agent", "127.0.0.1:" + port, "--reason", "test");
            assertEquals(0, stop.exitCode(), stop.toString());
            agent.awaitExit(Duration.ofSeconds(60));
            assertTrue(agent.output().contains("stop services: stopped web (pid " + w.getPid() + ", TERM)"), agent.output());
            assertTrue(ProcessHandle.of(w.getPid()).isEmpty() || !ProcessHandle.of(w.getPid()).get().isAlive(),
                    "the service's process has ended");
        }
    }

    @Test
    void aFailingBootScriptKeepsTheServiceFromStartingAndStatusSaysWhy() throws Exception {
        int port = FreePorts.loopbackPort();
        int web = FreePorts.loopbackPort();
        String more = """
                  lease:
                    ttl: 1h
                  boot-script: |
                    echo cannot check out the branch >&2
                    exit 3
                  services:
                    - name: web
                      port: %d
                      command: exec python3 -m http.server %d --bind 127.0.0.1
                """.formatted(web, web);
        try (MetadataMock imds = MetadataMock.builder().instanceId(INSTANCE_ID)
                .userData(Ec2ModeTest.userData(ca, INSTANCE_ID, port, more)).start();
             AgentProcess agent = AgentProcess.start(settings(imds), testMachine())) {
            assertEquals(port, agent.awaitListening(Duration.ofSeconds(90)), agent.output());
            StatusResponse s = awaitStatus(port, x -> x.getServices(0).getState() == ServiceState.SERVICE_STATE_FAILED,
                    "the service given up");
            String id = s.getBootScript().getId();
            assertEquals(BuildState.BUILD_STATE_FAILED, s.getBootScript().getState());
            assertEquals(3, s.getBootScript().getExitCode());
            assertEquals("the boot script failed with exit status 3", s.getServices(0).getDetail());
            assertTrue(s.getProblemsList().contains("boot script " + id + " failed with exit status 3; services not"
                    + " started: web (kiln logs boot)"), s.getProblemsList().toString());
            Kiln.Run boot = kiln.run("logs", "--agent", "127.0.0.1:" + port, "boot");
            assertEquals("cannot check out the branch\n", boot.out(), boot.toString());
            Kiln.Run followed = kiln.run("logs", "-f", "--agent", "127.0.0.1:" + port, "boot");
            assertNotEquals(0, followed.exitCode(), followed.toString());
            assertEquals("cannot check out the branch\n", followed.out(), followed.toString());
            assertTrue(followed.err().contains("kiln: boot script failed (exit 3)"), followed.toString());
        }
    }
}
