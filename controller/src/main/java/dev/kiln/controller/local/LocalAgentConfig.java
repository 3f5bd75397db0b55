package dev.kiln.controller.local;

import dev.kiln.controller.config.KilnPaths;
import dev.kiln.controller.fleet.AgentUserData;
import dev.kiln.controller.pki.FleetCa;
import dev.kiln.controller.pki.IssuedCertificate;
import dev.kiln.controller.pki.Pem;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** What a local agent's directory holds for it to start: its TLS files and its settings. */
final class LocalAgentConfig {

    private final KilnPaths paths;
    private final Path dir;

    LocalAgentConfig(KilnPaths paths, Path dir) {
        this.paths = paths;
        this.dir = dir;
    }

    /** Writes the agent's certificate (for localhost and 127.0.0.1), key and the fleet CA into this directory. */
    void writeTls(FleetCa ca) throws IOException {
        Files.createDirectories(dir);
        Instant now = Instant.now();
        IssuedCertificate cert = ca.issueServer("kiln-agent local", List.of("localhost"),
                List.of("127.0.0.1", "::1"), now.minus(Duration.ofMinutes(5)), now.plus(Duration.ofDays(365)));
        Pem.writePublic(dir.resolve("agent.crt"), cert.certificatePem());
        Pem.writePrivate(dir.resolve("agent.key"), cert.privateKeyPem());
        Pem.writePublic(dir.resolve("fleet-ca.crt"), Pem.encode(ca.certificate()));
    }

    /**
     * The {@code kiln} settings of an agent in this directory: local mode, its state, gRPC on
     * 127.0.0.1:port, its TLS files; a new map the caller adds to and writes with
     * {@link AgentUserData#write}.
     */
    Map<String, Object> settings(int port) {
        Map<String, Object> grpc = new LinkedHashMap<>();
        grpc.put("host", "127.0.0.1");
        grpc.put("port", port);
        Map<String, Object> tls = new LinkedHashMap<>();
        tls.put("cert", dir.resolve("agent.crt").toString());
        tls.put("key", dir.resolve("agent.key").toString());
        tls.put("ca", dir.resolve("fleet-ca.crt").toString());
        Map<String, Object> kiln = new LinkedHashMap<>();
        kiln.put("mode", "local");
        kiln.put("state-dir", dir.resolve("state").toString());
        kiln.put("grpc", grpc);
        kiln.put("tls", tls);
        return kiln;
    }

    /**
     * The {@code snapshots} settings: the fleet's snapshot store, where the agent's scheduled
     * snapshots go (kiln schedule), in the format {@code kiln snapshot} writes.
     */
    static Map<String, Object> snapshotSettings(Path store) {
        Map<String, Object> snapshots = new LinkedHashMap<>();
        snapshots.put("store", store.toString());
        return snapshots;
    }

    /** The {@code ssh} settings: what the agent serves, and the controller's key as owner and reader. */
    Map<String, Object> sshSettings(Path outputs, Path sources, int sshPort) {
        Map<String, Object> ssh = new LinkedHashMap<>();
        ssh.put("enabled", true);
        ssh.put("host", "127.0.0.1");
        ssh.put("port", sshPort);
        ssh.put("outputs", outputs.toString());
        ssh.put("sources", sources.toString());
        ssh.put("owner-keys", paths.sshPublicKey().toString());
        ssh.put("reader-keys", paths.sshPublicKey().toString());
        return ssh;
    }
}
