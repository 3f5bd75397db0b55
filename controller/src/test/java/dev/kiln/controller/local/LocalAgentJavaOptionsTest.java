package dev.kiln.controller.local;

import dev.kiln.controller.config.CliEnvironment;
import dev.kiln.controller.config.KilnPaths;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Optional;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class LocalAgentJavaOptionsTest {

    @TempDir
    Path home;

    private LocalAgent agent() {
        return new LocalAgent(KilnPaths.from(new CliEnvironment(Map.of(), home, System.out, System.err)));
    }

    @Test
    void defaultsCapTheHeapLikeTheSystemdUnit() {
        assertEquals(LocalAgent.DEFAULT_JAVA_OPTIONS, agent().javaOptions());
        assertTrue(LocalAgent.DEFAULT_JAVA_OPTIONS.contains("-Xmx160m"));
        assertEquals(LocalAgent.DEFAULT_JAVA_OPTIONS, agent().javaOptions(Optional.of("  ")).javaOptions());
    }

    @Test
    void agentJavaOptsReplacesTheDefaults() {
        assertEquals(List.of("-Xmx96m", "-XX:TieredStopAtLevel=1"),
                agent().javaOptions(Optional.of(" -Xmx96m  -XX:TieredStopAtLevel=1 ")).javaOptions());
    }
}
