package dev.kiln.agent.instance;

import dev.kiln.agent.build.BuildUser;
import dev.kiln.agent.build.OsProcessLauncher;
import dev.kiln.agent.build.ProcessLauncher;
import dev.kiln.testkit.Prerequisites;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.URI;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Optional;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The IMDS check's decisions, on loopback servers this test opens. The check with the image's
 * packet filter in place (refused) needs a network namespace with IMDS's address in it, and is in
 * e2e's ImdsRootOnlyTest, on the real agent process.
 */
class ImdsRootOnlyTest {

    private static final Duration TIMEOUT = Duration.ofSeconds(3);

    @Test
    void checksTheSdksDefaultEndpointUnlessTheSettingsNameAnother() {
        assertEquals("169.254.169.254:80", check(null).target());
        assertEquals("127.0.0.1:40123", check(URI.create("http://127.0.0.1:40123")).target());
        assertEquals("[fd00:ec2::254]:80", check(URI.create("http://[fd00:ec2::254]")).target());
    }

    @Test
    void readsTheProbesOutcomeFromBashsExitStatusAndMessage() {
        assertEquals(ImdsRootOnly.Outcome.CONNECTED, ImdsRootOnly.classify(0, "").outcome());
        ImdsRootOnly.Probe refused = ImdsRootOnly.classify(1, "kiln-imds-probe: connect: Connection refused\n"
                + "kiln-imds-probe: line 1: /dev/tcp/169.254.169.254/80: Connection refused\n");
        assertEquals(new ImdsRootOnly.Probe(ImdsRootOnly.Outcome.REFUSED, "Connection refused"), refused);
        // Without bash's /dev/tcp message the probe did not get as far as connecting: nothing is known.
        ImdsRootOnly.Probe notRun = ImdsRootOnly.classify(1, "setpriv: setresuid failed: Operation not permitted");
        assertEquals(ImdsRootOnly.Outcome.NOT_RUN, notRun.outcome());
        assertEquals(ImdsRootOnly.Outcome.NOT_RUN, ImdsRootOnly.classify(127, "").outcome());
    }

    @Test
    void anAgentThatIsNotRootIsReportedWithoutAProbe() {
        ImdsRootOnly check = new ImdsRootOnly(null, failingLauncher(), () -> {
            throw new AssertionError("no build user is looked up");
        }, false, TIMEOUT);
        Optional<String> problem = check.checkAtStart();
        assertTrue(problem.orElseThrow().startsWith("IMDS is not root-only: the agent does not run as root, so builds,"
                + " boot scripts and services run as its own user '" + System.getProperty("user.name") + "'"), problem.get());
        assertEquals(List.of(problem.get()), check.problems(), "Status reports it");
    }

    /** Without a packet filter on loopback, the real build user (as builds start) reaches the endpoint. */
    @Test
    void reportsTheBuildUserReachingTheEndpoint() throws IOException {
        Prerequisites.requireRoot("probing as the build user (setpriv)");
        BuildUser kiln = buildUser();
        try (ServerSocket imds = new ServerSocket(0, 50, InetAddress.getLoopbackAddress())) {
            String target = "127.0.0.1:" + imds.getLocalPort();
            ImdsRootOnly check = new ImdsRootOnly(URI.create("http://" + target), new OsProcessLauncher(), () -> kiln,
                    true, TIMEOUT);
            assertEquals(ImdsRootOnly.Outcome.CONNECTED, check.probeAs(kiln).outcome());
            String problem = check.checkAtStart().orElseThrow();
            assertTrue(problem.startsWith("IMDS is not root-only: the build user 'kiln' connected to " + target + ", so"
                    + " builds, boot scripts and services can read the EC2 user data and this agent's TLS key in it."),
                    problem);
            assertTrue(problem.contains("(nftables table inet kiln_imds from /etc/kiln/imds.nft, loaded by kiln-imds.service)"),
                    problem);
        }
    }

    @Test
    void aClosedPortRefusesTheBuildUsersProbe() throws IOException {
        Prerequisites.requireRoot("probing as the build user (setpriv)");
        BuildUser kiln = buildUser();
        int closed;
        try (ServerSocket s = new ServerSocket(0, 50, InetAddress.getLoopbackAddress())) {
            closed = s.getLocalPort();
        }
        ImdsRootOnly check = new ImdsRootOnly(URI.create("http://127.0.0.1:" + closed), new OsProcessLauncher(), () -> kiln,
                true, TIMEOUT);
        assertEquals(new ImdsRootOnly.Probe(ImdsRootOnly.Outcome.REFUSED, "Connection refused"), check.probeAs(kiln));
    }

    /** A refusal proves nothing when the agent cannot reach IMDS either: that is reported, never taken as success. */
    @Test
    void cannotCheckWhenTheAgentItselfDoesNotReachTheEndpoint() throws IOException {
        int closed;
        try (ServerSocket s = new ServerSocket(0, 50, InetAddress.getLoopbackAddress())) {
            closed = s.getLocalPort();
        }
        BuildUser someone = new BuildUser("kiln", 999, 999, Path.of("/"));
        ImdsRootOnly check = new ImdsRootOnly(URI.create("http://127.0.0.1:" + closed), failingLauncher(), () -> someone,
                true, TIMEOUT);
        String problem = check.checkAtStart().orElseThrow();
        assertTrue(problem.startsWith("cannot check that IMDS is root-only: the agent itself cannot connect to 127.0.0.1:"
                + closed + " ("), problem);
    }

    /** A probe that cannot start (or a build user that does not exist) is a problem, not a pass. */
    @Test
    void aProbeThatDoesNotRunOrAMissingBuildUserIsAProblem() throws IOException {
        BuildUser someone = new BuildUser("kiln", 999, 999, Path.of("/"));
        try (ServerSocket imds = new ServerSocket(0, 50, InetAddress.getLoopbackAddress())) {
            URI endpoint = URI.create("http://127.0.0.1:" + imds.getLocalPort());
            String notRun = new ImdsRootOnly(endpoint, failingLauncher(), () -> someone, true, TIMEOUT).check().orElseThrow();
            assertEquals("cannot check that IMDS is root-only: the probe as the build user 'kiln' did not run: no setsid here",
                    notRun);
            String noUser = new ImdsRootOnly(endpoint, failingLauncher(), () -> {
                throw new IllegalStateException("build user 'kiln' does not exist");
            }, true, TIMEOUT).check().orElseThrow();
            assertEquals("cannot check that IMDS is root-only: build user 'kiln' does not exist", noUser);
        }
    }

    private static ImdsRootOnly check(URI endpoint) {
        return new ImdsRootOnly(endpoint, failingLauncher(), () -> null, true, TIMEOUT);
    }

    private static BuildUser buildUser() {
        Optional<BuildUser> kiln = BuildUser.lookup("kiln");
        Prerequisites.require("the build user 'kiln'", kiln.isPresent(), "bash .ci/install creates it (useradd --system kiln)");
        return kiln.orElseThrow();
    }

    /** A launcher that cannot start anything. */
    private static ProcessLauncher failingLauncher() {
        return new ProcessLauncher() {
            @Override
            public Process start(List<String> argv, Path dir, BuildUser user, Map<String, String> env) throws IOException {
                throw new IOException("no setsid here");
            }

            @Override
            public void signalGroup(long pgid, String signal) {
            }

            @Override
            public List<Long> processesOf(String buildId) {
                return List.of();
            }
        };
    }
}
