package dev.kiln.controller.local;

import dev.kiln.controller.config.CliEnvironment;

import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;

/** Finds kiln-agent's jar: KILN_AGENT_JAR, the kiln.agent.jar property, beside kiln's jar, or in the source tree. */
public final class AgentJar {

    private AgentJar() {
    }

    public static Path locate(CliEnvironment env) {
        Optional<Path> explicit = env.get("KILN_AGENT_JAR").or(() -> Optional.ofNullable(System.getProperty("kiln.agent.jar")))
                .map(Path::of);
        if (explicit.isPresent()) {
            return explicit.get().toAbsolutePath();
        }
        Path self = selfLocation();
        if (self != null) {
            Path dir = Files.isDirectory(self) ? self : self.getParent();
            for (Path candidate : new Path[]{dir.resolve("kiln-agent.jar"),
                    dir.resolve("../../agent/target/kiln-agent.jar").normalize(),
                    dir.resolve("../../../agent/target/kiln-agent.jar").normalize()}) {
                if (Files.isRegularFile(candidate)) {
                    return candidate;
                }
            }
        }
        return Path.of("kiln-agent.jar").toAbsolutePath();
    }

    private static Path selfLocation() {
        try {
            return Path.of(AgentJar.class.getProtectionDomain().getCodeSource().getLocation().toURI());
        } catch (URISyntaxException | RuntimeException e) {
            return null;
        }
    }
}
