package dev.kiln.controller.local;

import dev.kiln.controller.client.AgentEndpoint;
import dev.kiln.controller.config.CliEnvironment;
import dev.kiln.controller.config.KilnPaths;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Properties;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Where `kiln ls` and every other command reach a local instance's agent: 127.0.0.1 with the
 * name localhost, as `kiln launch` starts it, or the loopback address and certificate name its
 * record names (grpc-host, cert-name; bench/ls-fanout's fleet on 50 addresses). An address that
 * is not a loopback literal is never dialled.
 */
class LocalProviderAddressTest {

    @TempDir
    Path home;

    final List<String> narrated = new ArrayList<>();

    @BeforeEach
    void openHome() throws IOException {
        // As root, a home closed to others moves the fleet to /var/lib/kiln-fleet (FleetRootTest).
        Files.setPosixFilePermissions(home, PosixFilePermissions.fromString("rwxr-xr-x"));
    }

    AgentEndpoint endpoint(String id, Map<String, String> extra) throws IOException {
        Path dir = Files.createDirectories(home.resolve(".local/state/kiln/fleet/instances").resolve(id));
        Properties p = new Properties();
        p.setProperty("role", "server");
        p.setProperty("launched", Instant.now().toString());
        p.setProperty("grpc-port", "7443");
        p.setProperty("volumes", "0");
        // Pending, with this JVM as its launcher: read as live without an agent process.
        p.setProperty("state", "pending");
        p.setProperty("launcher-pid", Long.toString(ProcessHandle.current().pid()));
        extra.forEach(p::setProperty);
        try (OutputStream out = Files.newOutputStream(dir.resolve("instance.properties"))) {
            p.store(out, null);
        }
        LocalProvider provider = new LocalProvider(KilnPaths.from(new CliEnvironment(Map.of(), home, System.out, System.err)))
                .narrate(narrated::add);
        return provider.get(id).endpoint("auto");
    }

    @Test
    void aLaunchedInstanceIsReachedOnLocalhost() throws Exception {
        assertEquals(new AgentEndpoint("127.0.0.1", 7443, "localhost"), endpoint("local-0000aaaa", Map.of()));
        assertEquals(List.of(), narrated);
    }

    @Test
    void aRecordNamesItsLoopbackAddressAndCertificateName() throws Exception {
        assertEquals(new AgentEndpoint("127.0.0.7", 7443, "agent-127-0-0-7.kiln.internal"),
                endpoint("local-0000bbbb", Map.of("grpc-host", "127.0.0.7", "cert-name", "agent-127-0-0-7.kiln.internal")));
        assertEquals(new AgentEndpoint("::1", 7443, "localhost"), endpoint("local-0000cccc", Map.of("grpc-host", "::1")));
        assertEquals(List.of(), narrated);
    }

    @Test
    void anAddressOffThisMachineIsIgnoredAndSaidSo() throws Exception {
        for (String host : List.of("10.0.0.7", "example.com", "localhost")) {
            narrated.clear();
            assertEquals(new AgentEndpoint("127.0.0.1", 7443, "localhost"),
                    endpoint("local-0000dddd", Map.of("grpc-host", host)), host);
            assertEquals(1, narrated.size(), host);
            assertTrue(narrated.get(0).contains("ignoring grpc-host=" + host) && narrated.get(0).contains("loopback"),
                    narrated.get(0));
        }
    }
}
