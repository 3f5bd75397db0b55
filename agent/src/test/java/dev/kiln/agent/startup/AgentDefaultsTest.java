package dev.kiln.agent.startup;

import io.micronaut.context.ApplicationContext;
import io.micronaut.context.env.Environment;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** The built-in settings reach every context, below the operator's agent.yml and the environment. */
class AgentDefaultsTest {

    @TempDir
    Path tmp;

    @AfterEach
    void clear() {
        System.clearProperty("micronaut.config.files");
    }

    @Test
    void theBuiltInSettingsApplyWhenNothingElseSaysOtherwise() {
        try (ApplicationContext context = AgentDefaults.contextBuilder().build()) {
            Environment env = context.getEnvironment();
            env.start();
            assertEquals("kiln-agent", env.getProperty("micronaut.application.name", String.class).orElseThrow());
            assertEquals(7443, env.getProperty("grpc.server.port", Integer.class).orElseThrow());
            assertEquals("127.0.0.1", env.getProperty("grpc.server.host", String.class).orElseThrow());
            assertEquals(false, env.getProperty("grpc.server.health.enabled", Boolean.class).orElseThrow());
        }
    }

    @Test
    void agentYmlAndKilnSettingsWinOverThem() throws Exception {
        Path agentYml = tmp.resolve("agent.yml");
        Files.writeString(agentYml, "kiln:\n  grpc:\n    port: 9443\ngrpc:\n  server:\n    await-termination: 9s\n");
        System.setProperty("micronaut.config.files", agentYml.toString()); // what MICRONAUT_CONFIG_FILES sets
        try (ApplicationContext context = AgentDefaults.contextBuilder().properties(Map.of("kiln.grpc.host", "::1")).build()) {
            Environment env = context.getEnvironment();
            env.start();
            assertEquals(9443, env.getProperty("grpc.server.port", Integer.class).orElseThrow());
            assertEquals("::1", env.getProperty("grpc.server.host", String.class).orElseThrow());
            assertEquals("9s", env.getProperty("grpc.server.await-termination", String.class).orElseThrow());
        }
    }
}
