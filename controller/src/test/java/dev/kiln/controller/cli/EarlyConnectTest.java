package dev.kiln.controller.cli;

import dev.kiln.controller.client.AgentEndpoint;
import dev.kiln.controller.client.ClientTls;
import dev.kiln.controller.config.CliEnvironment;
import dev.kiln.controller.config.KilnPaths;
import dev.kiln.controller.local.LocalAgent;
import dev.kiln.controller.pki.FleetInit;
import io.grpc.ManagedChannel;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.InputStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.nio.file.Path;
import java.time.Clock;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The connection a command opens while the CLI starts: to the agent the command line names (or
 * the default one), claimed by a client only for exactly that endpoint and TLS material, closed
 * when unclaimed. The "agent" is a plain TCP listener on loopback that counts connections (the
 * TLS handshake never completes, which leaves the channel connecting, as a slow agent would).
 */
class EarlyConnectTest {

    @TempDir
    Path home;

    final List<Socket> accepted = new ArrayList<>();
    ServerSocket listener;

    @AfterEach
    void closeAll() throws IOException {
        EarlyConnect.close();
        for (Socket s : accepted) {
            s.close();
        }
        if (listener != null) {
            listener.close();
        }
    }

    @Test
    void readsTheCommandAndItsAgentOptionsUpToABuildsOwnCommand() {
        assertEquals(Optional.of(new EarlyConnect.Target("status", null, null)), EarlyConnect.target(new String[] {"status"}));
        assertEquals(Optional.of(new EarlyConnect.Target("build", "127.0.0.1:7443", null)), EarlyConnect.target(
                new String[] {"build", "--agent", "127.0.0.1:7443", "/work", "--", "make", "--agent", "elsewhere:1"}));
        assertEquals(Optional.of(new EarlyConnect.Target("logs", "h:1", "agent.example")), EarlyConnect.target(
                new String[] {"logs", "--agent=h:1", "--tls-server-name=agent.example", "b-1"}));
        assertEquals(Optional.empty(), EarlyConnect.target(new String[] {"ls"}), "ls talks to many agents (fleetTarget)");
        assertEquals(Optional.empty(), EarlyConnect.target(new String[] {"launch", "--agent", "h:1"}));
        assertEquals(Optional.empty(), EarlyConnect.target(new String[] {"--help"}));
        assertEquals(Optional.empty(), EarlyConnect.target(new String[] {"status", "--help"}), "help needs no agent");
        assertEquals(Optional.empty(), EarlyConnect.target(new String[] {}));
    }

    @Test
    void connectsAtOnceAndHandsTheChannelToTheFirstClientForThatAgent() throws Exception {
        KilnPaths paths = initialised();
        int port = listen();
        EarlyConnect.start(env(Map.of("KILN_AGENT", "127.0.0.1:" + port)), new String[] {"status"});
        Socket connection = accept(); // before any client asked for it
        assertNotNull(connection, "the early thread connected to the agent KILN_AGENT names");

        AgentEndpoint endpoint = AgentEndpoint.parse("127.0.0.1:" + port);
        Optional<ManagedChannel> channel = EarlyConnect.claim(endpoint, ClientTls.of(paths));
        assertTrue(channel.isPresent(), "the first client for that agent gets the channel");
        assertEquals(Optional.empty(), EarlyConnect.claim(endpoint, ClientTls.of(paths)), "only once");
        EarlyConnect.close();
        assertTrue(stillOpen(connection), "a claimed channel is its client's to close");
        channel.get().shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
        assertTrue(closedByPeer(connection), "closing the client's channel closes the connection");
    }

    @Test
    void aGuessThatNoClientClaimsIsClosed() throws Exception {
        KilnPaths paths = initialised();
        int port = listen();
        EarlyConnect.start(env(Map.of()), new String[] {"build", "--agent", "127.0.0.1:" + port, "/work"});
        Socket connection = accept();
        assertNotNull(connection, "the early thread connected to the agent --agent names");
        assertEquals(Optional.empty(), EarlyConnect.claim(AgentEndpoint.parse("127.0.0.1:" + (port + 1)), ClientTls.of(paths)),
                "a client for another agent does not get it");
        assertEquals(Optional.empty(), EarlyConnect.claim(AgentEndpoint.parse("127.0.0.1:" + port).withServerName("other.name"),
                ClientTls.of(paths)), "nor one that checks another certificate name");
        EarlyConnect.close();
        assertTrue(closedByPeer(connection), "the unclaimed connection is closed at exit");
    }

    @Test
    void leavesInstanceIdsAndOtherCommandsAlone() throws Exception {
        KilnPaths paths = initialised();
        int port = listen();
        // The local agent's endpoint names the listener too: an instance id must not fall back to it.
        java.nio.file.Files.createDirectories(new LocalAgent(paths).endpointFile().getParent());
        java.nio.file.Files.writeString(new LocalAgent(paths).endpointFile(), "127.0.0.1:" + port + "\n");
        EarlyConnect.start(env(Map.of("KILN_AGENT", "127.0.0.1:" + port)), new String[] {"status", "--agent", "local-0123abcd"});
        assertNull(acceptWithin(1000), "an instance id is resolved by the command, not guessed");
        EarlyConnect.close();
        EarlyConnect.start(env(Map.of("KILN_AGENT", "127.0.0.1:" + port)), new String[] {"ls"});
        assertNull(acceptWithin(1000), "ls asks the fleet's agents, not the one KILN_AGENT names");
    }

    @Test
    void readsTheFleetOptionsOfLs() {
        assertEquals(Optional.of(new EarlyConnect.FleetTarget(null, null)), EarlyConnect.fleetTarget(new String[] {"ls"}));
        assertEquals(Optional.of(new EarlyConnect.FleetTarget("ec2", "private")), EarlyConnect.fleetTarget(
                new String[] {"ls", "--provider", "ec2", "--address=private", "-o", "json"}));
        assertEquals(Optional.empty(), EarlyConnect.fleetTarget(new String[] {"ls", "--help"}));
        assertEquals(Optional.empty(), EarlyConnect.fleetTarget(new String[] {"status"}));
    }

    @Test
    void lsConnectsToEveryRunningLocalInstanceAtOnce() throws Exception {
        KilnPaths paths = initialised();
        java.nio.file.Files.setPosixFilePermissions(home, java.nio.file.attribute.PosixFilePermissions.fromString("rwxr-xr-x"));
        List<ServerSocket> agents = new ArrayList<>();
        List<Process> marks = new ArrayList<>();
        try {
            for (int i = 2; i <= 3; i++) {
                ServerSocket agent = new ServerSocket(0, 50, InetAddress.getByName("127.0.0." + i));
                agents.add(agent);
                marks.add(runningInstance(paths, "local-0000000" + i, "127.0.0." + i, agent.getLocalPort()));
            }
            EarlyConnect.start(env(Map.of()), new String[] {"ls", "--provider", "ec2"});
            for (ServerSocket agent : agents) {
                agent.setSoTimeout(1000);
                assertThrows(SocketTimeoutException.class, agent::accept, "no early connection for an EC2 listing");
            }
            EarlyConnect.close();

            EarlyConnect.start(env(Map.of()), new String[] {"ls"});
            for (ServerSocket agent : agents) {
                agent.setSoTimeout(10_000);
                accepted.add(agent.accept()); // before any client asked for it
            }
            AgentEndpoint first = new AgentEndpoint("127.0.0.2", agents.get(0).getLocalPort(), "agent-2.kiln.internal");
            Optional<ManagedChannel> channel = EarlyConnect.claim(first, ClientTls.of(paths));
            assertTrue(channel.isPresent(), "ls's client for that agent gets its channel");
            channel.get().shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
            EarlyConnect.close();
            assertTrue(closedByPeer(accepted.get(1)), "the unclaimed connection is closed at exit");
        } finally {
            marks.forEach(Process::destroy);
            for (ServerSocket agent : agents) {
                agent.close();
            }
        }
    }

    /**
     * A running local instance's record whose agent listens at host:port, and the process its
     * agent.pid names: one whose command line carries the instance directory's mark, as an agent's does.
     */
    static Process runningInstance(KilnPaths paths, String id, String host, int port) throws IOException {
        Path dir = java.nio.file.Files.createDirectories(new dev.kiln.controller.local.LocalProvider(paths).root()
                .resolve("instances").resolve(id));
        Process p = new ProcessBuilder("sh", "-c", "sleep 60", "-Dkiln-local-agent-dir=" + dir).start();
        java.nio.file.Files.writeString(dir.resolve("agent.pid"), p.pid() + "\n");
        java.nio.file.Files.writeString(dir.resolve("instance.properties"), "role=server\nlaunched=" + java.time.Instant.now()
                + "\ngrpc-port=" + port + "\ngrpc-host=" + host + "\ncert-name=agent-" + host.substring(host.lastIndexOf('.') + 1)
                + ".kiln.internal\nvolumes=0\nstate=running\n");
        return p;
    }

    KilnPaths initialised() {
        KilnPaths p = KilnPaths.from(env(Map.of()));
        new FleetInit(p, Clock.systemUTC()).run(false, "alice@laptop");
        return p;
    }

    CliEnvironment env(Map<String, String> vars) {
        return new CliEnvironment(vars, home, System.out, System.err);
    }

    int listen() throws IOException {
        listener = new ServerSocket(0, 50, InetAddress.getLoopbackAddress());
        return listener.getLocalPort();
    }

    Socket accept() throws IOException {
        return acceptWithin(10_000);
    }

    Socket acceptWithin(int millis) throws IOException {
        listener.setSoTimeout(millis);
        try {
            Socket s = listener.accept();
            accepted.add(s);
            return s;
        } catch (SocketTimeoutException e) {
            return null;
        }
    }

    /** True when the peer closes (or resets) the connection within 10 s; what it sent before is skipped. */
    static boolean closedByPeer(Socket s) throws IOException {
        return closedWithin(s, 10_000);
    }

    /** True when the peer keeps the connection open for half a second. */
    static boolean stillOpen(Socket s) throws IOException {
        return !closedWithin(s, 500);
    }

    static boolean closedWithin(Socket s, int millis) throws IOException {
        s.setSoTimeout(millis);
        InputStream in = s.getInputStream();
        byte[] buf = new byte[4096];
        try {
            while (in.read(buf) >= 0) {
                // skip what the peer sent (its TLS hello)
            }
            return true;
        } catch (SocketTimeoutException e) {
            return false;
        } catch (IOException e) {
            return true; // reset
        }
    }
}
