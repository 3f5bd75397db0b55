package dev.kiln.e2e;

import dev.kiln.micronaut.JarServices;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileSystem;
import java.nio.file.FileSystems;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.stream.Collectors;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Both packaged programs hand Micronaut the services their jar lists (JarServices) instead of
 * letting it open the jar as a zip file system to find them: the lists must be what that scan
 * finds, and the programs must no longer open a zip file system at all.
 */
class JarServicesTest {

    @TempDir
    Path home;

    @Test
    void listsWhatMicronautsZipFileSystemWalkFindsInBothJars() throws IOException {
        for (Path jar : List.of(AgentProcess.jar(), RepoScript.ROOT.resolve("controller/target/kiln.jar"))) {
            Map<String, Set<String>> listed = new TreeMap<>();
            JarServices.list(jar).forEach((service, names) -> {
                assertEquals(names.size(), new TreeSet<>(names).size(), "no name twice: " + service);
                listed.put(service, new TreeSet<>(names));
            });
            assertEquals(walk(jar), listed, jar.toString());
            assertTrue(listed.getOrDefault("io.micronaut.inject.BeanDefinitionReference", Set.of()).size() > 10,
                    jar + ": " + listed.keySet());
        }
    }

    @Test
    void theCliStartsMicronautWithoutOpeningItsJarAsAZipFileSystem() throws Exception {
        Path log = home.resolve("classes.txt");
        String java = ProcessHandle.current().info().command().orElse("java");
        RepoScript.Result r = RepoScript.run(home, Map.of(), Duration.ofMinutes(2), java,
                "-Xlog:class+load=info:file=" + log, "-jar", "controller/target/kiln.jar", "init");
        assertEquals(0, r.code(), r.err());
        String classes = Files.readString(log, StandardCharsets.UTF_8);
        assertTrue(classes.contains("dev.kiln.micronaut.JarServices "), "JarServices ran");
        assertTrue(classes.contains("io.micronaut.context.DefaultApplicationContext "), "Micronaut started");
        assertFalse(classes.contains("jdk.nio.zipfs.ZipFileSystem "), "no zip file system opened");
    }

    /** The META-INF/micronaut/SERVICE/NAME entries, found as Micronaut finds them: a zip file system's walk. */
    private static Map<String, Set<String>> walk(Path jar) throws IOException {
        Map<String, Set<String>> found = new TreeMap<>();
        try (FileSystem fs = FileSystems.newFileSystem(jar); Stream<Path> services = Files.list(fs.getPath("/META-INF/micronaut"))) {
            for (Path service : services.filter(Files::isDirectory).toList()) {
                try (Stream<Path> names = Files.list(service)) {
                    found.put(service.getFileName().toString().replace("/", ""),
                            names.map(p -> p.getFileName().toString()).collect(Collectors.toCollection(TreeSet::new)));
                }
            }
        }
        return found;
    }
}
