package dev.kiln.e2e;

import dev.kiln.controller.pki.FleetCa;
import dev.kiln.controller.pki.IssuedCertificate;
import dev.kiln.controller.pki.Pem;
import dev.kiln.testkit.FreePorts;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;

/**
 * A controller (kiln init in its own home) and a local-mode agent process with a certificate from
 * the controller's fleet CA, on a fixed loopback port so the agent can be restarted in place.
 */
final class LocalFleet implements AutoCloseable {

    final Kiln kiln;
    final Path settings;
    final int port;
    final Path stateDir;
    AgentProcess agent;

    LocalFleet(Path dir) throws Exception {
        kiln = new Kiln(dir.resolve("home"));
        Kiln.Run init = kiln.run("init");
        if (init.exitCode() != 0) {
            throw new IllegalStateException(init.toString());
        }
        FleetCa ca = FleetCa.load(kiln.configDir().resolve("fleet-ca.crt"), kiln.configDir().resolve("fleet-ca.key"));
        Instant now = Instant.now();
        IssuedCertificate cert = ca.issueServer("kiln-agent test", List.of("localhost"), List.of("127.0.0.1"),
                now.minus(Duration.ofMinutes(5)), now.plus(Duration.ofDays(1)));
        Path tls = Files.createDirectories(dir.resolve("agent-tls"));
        Pem.writePublic(tls.resolve("agent.crt"), cert.certificatePem());
        Pem.writePrivate(tls.resolve("agent.key"), cert.privateKeyPem());
        port = FreePorts.loopbackPort();
        stateDir = dir.resolve("agent-state");
        settings = dir.resolve("agent.yml");
        Files.writeString(settings, """
                kiln:
                  mode: local
                  state-dir: '%s'
                  grpc:
                    host: 127.0.0.1
                    port: %d
                  tls:
                    cert: '%s'
                    key: '%s'
                    ca: '%s'
                """.formatted(stateDir, port, tls.resolve("agent.crt"), tls.resolve("agent.key"),
                kiln.configDir().resolve("fleet-ca.crt")));
    }

    /** Starts (or restarts) the agent and waits until it listens. */
    LocalFleet start() throws Exception {
        agent = AgentProcess.start(settings, Map.of());
        agent.awaitListening(Duration.ofSeconds(60));
        return this;
    }

    /** Stops the agent gracefully (TERM), as systemd or `kiln down` would. */
    void stop() throws Exception {
        if (agent != null) {
            agent.close();
            agent = null;
        }
    }

    /** Kills the agent (SIGKILL), as a crash would. */
    void crash() throws Exception {
        if (agent != null) {
            agent.kill();
            agent = null;
        }
    }

    String address() {
        return "127.0.0.1:" + port;
    }

    /** A directory the unprivileged build user may use as a work tree. */
    static Path workTree(Path parent, String name) throws IOException {
        Path tree = Files.createDirectories(parent.resolve(name));
        // The build user must be able to reach it: open up the test's own directories only.
        Files.setPosixFilePermissions(parent, PosixFilePermissions.fromString("rwxr-xr-x"));
        Files.setPosixFilePermissions(tree, PosixFilePermissions.fromString("rwxr-xr-x"));
        if ("root".equals(System.getProperty("user.name"))) {
            dev.kiln.testkit.Prerequisites.require("the unprivileged build user 'kiln'",
                    runs("getent", "passwd", "kiln"), "useradd --system --create-home kiln (bash .ci/install does it)");
            if (!runs("chown", "-R", "kiln:", tree.toString())) {
                throw new IOException("cannot chown " + tree + " to kiln");
            }
        }
        return tree;
    }

    static boolean runs(String... argv) {
        try {
            Process p = new ProcessBuilder(argv).redirectErrorStream(true).start();
            p.getInputStream().readAllBytes();
            return p.waitFor() == 0;
        } catch (IOException e) {
            return false;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return false;
        }
    }

    /** The bytes of a build's log on the agent. */
    byte[] logOnAgent(String buildId) throws IOException {
        return Files.readAllBytes(stateDir.resolve("builds").resolve(buildId).resolve("log"));
    }

    @Override
    public void close() throws Exception {
        stop();
    }
}
