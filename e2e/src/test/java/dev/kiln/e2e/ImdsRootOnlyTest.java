package dev.kiln.e2e;

import com.google.protobuf.util.JsonFormat;
import dev.kiln.controller.fleet.AgentUserData;
import dev.kiln.controller.pki.FleetCa;
import dev.kiln.controller.pki.IssuedCertificate;
import dev.kiln.proto.agent.v1.AgentState;
import dev.kiln.proto.agent.v1.Mode;
import dev.kiln.proto.agent.v1.StatusResponse;
import dev.kiln.testkit.MetadataMock;
import dev.kiln.testkit.NetworkNamespace;
import dev.kiln.testkit.Prerequisites;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Only root reaches IMDS on an instance of the image: the packet filter packer/kiln-imds.nft (which
 * provision.sh installs and kiln-imds.service loads at boot) refuses the build user's connections
 * to 169.254.169.254 and fd00:ec2::254, and the agent checks at start that it does.
 *
 * <p>Everything runs in a network namespace this test creates (and deletes): IMDS's addresses on
 * its loopback interface, AWS's amazon-ec2-metadata-mock listening on them at port 80, the rule
 * file from the repository loaded with nft, and the clients started inside with {@code ip netns
 * exec}. The namespace has no interface but loopback, so nothing it sends can leave the machine.
 * The build user is the real {@code kiln} account (bash .ci/install creates it as the image does);
 * the clients switch to it with {@code setpriv}, as the agent does for builds.
 *
 * <p>The agent's check is tested on the real agent process, started inside the namespace exactly
 * as on an instance: the image's agent.yml, no IMDS endpoint override (the SDK's default,
 * 169.254.169.254:80), user data as {@code kiln launch} writes it. Its Status is read with the
 * packaged kiln CLI, run inside the namespace too (the agent's gRPC port is on the namespace's
 * loopback, out of this JVM's reach).
 */
class ImdsRootOnlyTest {

    static final Path RULE = ImageAndUnitTest.PACKER_DIR.resolve("kiln-imds.nft");
    static final Path CLI_JAR = ImageAndUnitTest.ROOT.resolve("controller/target/kiln.jar");
    static final String IMDS_V4 = "169.254.169.254";
    static final String IMDS_V6 = "fd00:ec2::254";
    static final String BUILD_USER = "kiln";
    static final String INSTANCE_ID = "i-0feedfacecafe0254";
    /** What the user data holds in the client tests: stands for the agent's TLS key. */
    static final String SECRET = "kiln-imds-test: the agent's TLS key would be here\n";

    /**
     * IMDSv2 as every client does it: a token with PUT, then the user data with the token. --fail
     * makes an HTTP error a non-zero exit; --noproxy keeps a proxy from the environment out.
     */
    static final String GET_USER_DATA = "T=$(curl -fsS --noproxy '*' --max-time 5 -X PUT"
            + " -H 'X-aws-ec2-metadata-token-ttl-seconds: 60' \"$1/latest/api/token\")"
            + " && curl -fsS --noproxy '*' --max-time 5 -H \"X-aws-ec2-metadata-token: $T\" \"$1/latest/user-data\"";

    @TempDir
    Path dir;

    String nft;
    String setpriv;
    String curl;

    @BeforeEach
    void prerequisites() {
        Prerequisites.requireRoot("a network namespace, nft and switching to the build user");
        Prerequisites.requireCommand("ip", NetworkNamespace.INSTALL_HINT);
        nft = Prerequisites.requireCommand("nft", "apt-get install nftables (bash .ci/install does it)").toString();
        curl = Prerequisites.requireCommand("curl", "apt-get install curl (bash .ci/install does it)").toString();
        setpriv = Prerequisites.requireCommand("setpriv", "apt-get install util-linux").toString();
        Prerequisites.requireCommand(MetadataMock.BINARY_NAME, MetadataMock.INSTALL_HINT);
        Prerequisites.require("the build user '" + BUILD_USER + "'",
                ImageAndUnitTest.run(List.of("getent", "passwd", BUILD_USER), Map.of(), dir, Duration.ofSeconds(10)).exitCode() == 0,
                "bash .ci/install creates it (useradd --system kiln), as packer/provision.sh does in the image");
    }

    @Test
    void withTheImagesRuleRootReadsTheUserDataAndTheBuildUserIsRefusedOverIpv4AndIpv6() throws Exception {
        try (NetworkNamespace ns = imdsNamespace();
             MetadataMock v4 = MetadataMock.builder().instanceId(INSTANCE_ID).userData(SECRET)
                     .inNetworkNamespace(ns, IMDS_V4, 80).start();
             MetadataMock v6 = MetadataMock.builder().instanceId(INSTANCE_ID).userData(SECRET)
                     .inNetworkNamespace(ns, IMDS_V6, 80).start()) {
            List<String> endpoints = List.of(v4.endpoint().toString(), v6.endpoint().toString());

            // Without the rule anyone on the machine reads the user data: what the rule is for, and
            // proof that the refusals below come from it.
            for (String endpoint : endpoints) {
                assertEquals(SECRET, userData(ns, false, endpoint).orThrow(), "root, no rule, " + endpoint);
                assertEquals(SECRET, userData(ns, true, endpoint).orThrow(), "build user, no rule, " + endpoint);
            }

            loadRule(ns);
            for (String endpoint : endpoints) {
                assertEquals(SECRET, userData(ns, false, endpoint).orThrow(), "root still reads it: " + endpoint);
                Curl refused = userData(ns, true, endpoint);
                // curl's exit 7: it could not connect (the rule's reject answers the SYN at once).
                assertEquals(7, refused.exitCode(), "the build user is refused: " + refused);
                assertFalse(refused.stdout().contains("TLS key"), refused.toString());
            }

            // Loading the file again (ExecReload, a second boot of the unit) replaces the table in
            // one transaction: still one table, still refused.
            loadRule(ns);
            ImageAndUnitTest.Result tables = inside(ns, List.of(nft, "list", "tables"));
            assertEquals(List.of("table inet kiln_imds"), tables.stdout().lines().toList(), tables.toString());
            assertEquals(7, userData(ns, true, endpoints.get(0)).exitCode());
        }
    }

    /**
     * The agent's start-up check, both ways, on the real agent process. In the namespace without
     * the rule the build user reaches IMDS, and `kiln status` shows the problem (the state stays
     * ready: the agent runs and reports, it does not stop or degrade for this); with the rule
     * loaded there is no problem.
     */
    @Test
    void theAgentReportsAMissingRuleInKilnStatusAndNoProblemWithTheRule() throws Exception {
        Prerequisites.require("the packaged kiln CLI (" + CLI_JAR + ")", java.nio.file.Files.isRegularFile(CLI_JAR),
                "mvn -B -ntp -pl e2e -am verify packages it before the e2e tests");
        Kiln kiln = new Kiln(dir.resolve("home"));
        Kiln.Run init = kiln.run("init");
        assertEquals(0, init.exitCode(), init.toString());
        FleetCa ca = FleetCa.load(kiln.configDir().resolve("fleet-ca.crt"), kiln.configDir().resolve("fleet-ca.key"));
        Instant now = Instant.now();
        IssuedCertificate cert = ca.issueServer("kiln-agent " + INSTANCE_ID, List.of("localhost"), List.of("127.0.0.1"),
                now.minus(Duration.ofMinutes(5)), now.plus(Duration.ofDays(1)));
        int port = 7443; // the namespace is empty: the image's port is free
        String userData = AgentUserData.yaml(cert, ca, port, Duration.ofHours(2), Duration.ofHours(12));

        try (NetworkNamespace ns = imdsNamespace();
             MetadataMock imds = MetadataMock.builder().instanceId(INSTANCE_ID).region("eu-west-1").userData(userData)
                     .inNetworkNamespace(ns, IMDS_V4, 80).start()) {
            String open = "IMDS is not root-only: the build user '" + BUILD_USER + "' connected to " + IMDS_V4 + ":80, so"
                    + " builds, boot scripts and services can read the EC2 user data and this agent's TLS key in it.";

            Agent withoutRule = agentStatus(ns, kiln, "without-rule");
            StatusResponse without = withoutRule.status();
            assertEquals(Mode.MODE_EC2, without.getMode());
            assertEquals(INSTANCE_ID, without.getInstanceId(), "the agent read IMDS at the SDK's default endpoint");
            assertEquals(AgentState.AGENT_STATE_READY, without.getState(), "it runs and reports; not degraded");
            assertEquals(1, without.getProblemsCount(), without.toString());
            assertTrue(without.getProblems(0).startsWith(open), without.getProblems(0));
            assertTrue(without.getProblems(0).contains("nftables table inet kiln_imds from /etc/kiln/imds.nft, loaded by"
                    + " kiln-imds.service"), without.getProblems(0));
            // And in the journal (the agent's output), where an operator without kiln status looks.
            assertTrue(withoutRule.output().contains("imds: " + open), withoutRule.output());

            loadRule(ns);
            Agent withRule = agentStatus(ns, kiln, "with-rule");
            assertEquals(AgentState.AGENT_STATE_READY, withRule.status().getState());
            assertEquals(List.of(), withRule.status().getProblemsList(), "the build user is refused: nothing to report");
            // Refused by the rule's reject, at once: the probe saw the refusal, not a timeout.
            assertTrue(withRule.output().contains("imds: only root reaches IMDS at 169.254.169.254:80: the build user 'kiln'"
                    + " is refused (Connection refused)"), withRule.output());
        }
    }

    // ---------------------------------------------------------------- helpers

    /** A namespace with IMDS's IPv4 and IPv6 addresses on its loopback. */
    private static NetworkNamespace imdsNamespace() {
        NetworkNamespace ns = NetworkNamespace.create("kiln-imds-test");
        try {
            ns.addLoopbackAddress(IMDS_V4 + "/32");
            ns.addLoopbackAddress(IMDS_V6 + "/128");
            return ns;
        } catch (RuntimeException e) {
            ns.close();
            throw e;
        }
    }

    /** Loads the repository's rule file in the namespace, as kiln-imds.service does at boot. */
    private void loadRule(NetworkNamespace ns) {
        ImageAndUnitTest.Result r = inside(ns, List.of(nft, "-f", RULE.toString()));
        assertEquals(0, r.exitCode(), r.toString());
    }

    /**
     * Starts the agent in the namespace as systemd starts it on an instance (only what a test
     * machine needs differs: a scratch state directory, no backstop timer, no power-off), waits until
     * it listens, reads its Status with the CLI, and stops it.
     */
    private Agent agentStatus(NetworkNamespace ns, Kiln kiln, String name) throws Exception {
        try (AgentProcess agent = AgentProcess.start(ns.exec(List.of()), List.of(), ImageAndUnitTest.IMAGE_SETTINGS, Map.of(
                "KILN_STATE_DIR", dir.resolve(name).toString(),
                "KILN_LEASE_BACKSTOP", "none",      // never arm a real poweroff timer on a test machine
                "KILN_LEASE_POWER_OFF", "exit"))) {
            int port = agent.awaitListening(Duration.ofSeconds(120));
            List<String> cli = new ArrayList<>(List.of("env", "-i", "PATH=/usr/bin:/bin",
                    "HOME=" + dir.resolve("home"),
                    "XDG_CONFIG_HOME=" + kiln.configDir().getParent(),
                    "XDG_STATE_HOME=" + kiln.stateDir().getParent(),
                    ProcessHandle.current().info().command().orElse("java"), "-jar", CLI_JAR.toString(),
                    "status", "--agent", "127.0.0.1:" + port, "-o", "json"));
            ImageAndUnitTest.Result json = ImageAndUnitTest.run(ns.exec(cli), Map.of(), dir, Duration.ofSeconds(120));
            assertEquals(0, json.exitCode(), json + "\nagent output:\n" + agent.output());
            StatusResponse.Builder status = StatusResponse.newBuilder();
            JsonFormat.parser().merge(json.stdout(), status);
            System.out.println("[ImdsRootOnlyTest] " + name + ": problems " + status.getProblemsList());
            return new Agent(status.build(), agent.output());
        }
    }

    /** Fetches the user data with curl in the namespace, as root or as the build user. */
    private Curl userData(NetworkNamespace ns, boolean asBuildUser, String endpoint) {
        List<String> command = new ArrayList<>();
        if (asBuildUser) {
            command.addAll(List.of(setpriv, "--reuid=" + BUILD_USER, "--regid=" + BUILD_USER, "--clear-groups"));
        }
        // No proxy or other settings from this machine's environment reach curl.
        command.addAll(List.of("env", "-i", "PATH=" + Path.of(curl).getParent() + ":/usr/bin:/bin",
                "sh", "-c", GET_USER_DATA, "get-user-data", endpoint));
        return new Curl(asBuildUser ? BUILD_USER : "root", inside(ns, command));
    }

    private ImageAndUnitTest.Result inside(NetworkNamespace ns, List<String> command) {
        return ImageAndUnitTest.run(ns.exec(command), Map.of(), dir, Duration.ofSeconds(60));
    }

    /** What the agent's Status said, and what it printed (the journal on an instance). */
    record Agent(StatusResponse status, String output) {
    }

    /** What curl got, and as whom. */
    record Curl(String user, ImageAndUnitTest.Result result) {
        int exitCode() {
            return result.exitCode();
        }

        String stdout() {
            return result.stdout();
        }

        /** The user data; fails the test unless curl succeeded. */
        String orThrow() {
            assertEquals(0, result.exitCode(), toString());
            assertNotEquals("", result.stdout(), toString());
            return result.stdout();
        }

        @Override
        public String toString() {
            return "as " + user + ": " + result;
        }
    }
}
