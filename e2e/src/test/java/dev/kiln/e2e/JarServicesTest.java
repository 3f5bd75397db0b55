package dev.kiln.e2e;

import dev.kiln.agent.Main;
import dev.kiln.controller.client.AgentClient;
import dev.kiln.controller.client.AgentEndpoint;
import dev.kiln.startup.JarServices;
import dev.kiln.proto.agent.v1.Mode;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.URL;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileSystem;
import java.nio.file.FileSystems;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.jar.JarEntry;
import java.util.jar.JarFile;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Neither packaged program lets Micronaut open its jar as a zip file system to find its services:
 * the CLI hands Micronaut the services its jar lists (JarServices), which must be what that scan
 * finds; the agent's jar carries service lists Micronaut AOT computed at build time. The agent
 * leaves out the Micronaut modules it does not use: it creates none of their services, and still
 * starts and answers.
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
        assertTrue(classes.contains("dev.kiln.startup.JarServices "), "JarServices ran");
        assertTrue(classes.contains("io.micronaut.context.DefaultApplicationContext "), "Micronaut started");
        assertFalse(classes.contains("jdk.nio.zipfs.ZipFileSystem "), "no zip file system opened");
        // Only `kiln ui` serves HTTP: every other command leaves the server's services out.
        assertTrue(classes.contains("dev.kiln.controller.Main "), "the CLI ran");
        for (String uiOnly : List.of(" io.micronaut.http.server.", " io.micronaut.web.router.", " dev.kiln.controller.ui.$")) {
            assertFalse(classes.contains(uiOnly), "loaded by `kiln init`: " + classes.lines().filter(l -> l.contains(uiOnly))
                    .findFirst().orElse(""));
        }
    }

    @Test
    void theCliConnectsBeforeItListsItsServicesAndStillOpensNoZipFileSystem() throws Exception {
        String java = ProcessHandle.current().info().command().orElse("java");
        RepoScript.Result init = RepoScript.run(home, Map.of(), Duration.ofMinutes(2), java, "-jar", "controller/target/kiln.jar", "init");
        assertEquals(0, init.code(), init.err());
        int closed;
        try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            closed = s.getLocalPort(); // refused once closed: the command fails after Micronaut and picocli started
        }
        Path log = home.resolve("status-classes.txt");
        RepoScript.Result r = RepoScript.run(home, Map.of(), Duration.ofMinutes(2), java, "-Xlog:class+load=info:file=" + log,
                "-jar", "controller/target/kiln.jar", "status", "--agent", "127.0.0.1:" + closed, "--timeout", "2s");
        assertEquals(4, r.code(), r.err()); // unreachable
        String classes = Files.readString(log, StandardCharsets.UTF_8);
        int early = classes.indexOf("dev.kiln.controller.cli.EarlyConnect$Early ");
        int listed = classes.indexOf("dev.kiln.startup.JarServices ");
        assertTrue(early >= 0, "the early connection made a channel");
        assertTrue(listed >= 0, "JarServices ran");
        // EarlyConnect.start comes first in Main: its thread may already be connecting while JarServices lists.
        assertTrue(classes.indexOf("dev.kiln.controller.cli.EarlyConnect ") < listed, "EarlyConnect started before JarServices");
        assertTrue(classes.contains("io.micronaut.context.DefaultApplicationContext "), "Micronaut started");
        assertFalse(classes.contains("jdk.nio.zipfs.ZipFileSystem "), "no zip file system opened");
        for (String uiOnly : List.of(" io.micronaut.http.server.", " io.micronaut.web.router.", " dev.kiln.controller.ui.$")) {
            assertFalse(classes.contains(uiOnly), "loaded by `kiln status`: " + classes.lines().filter(l -> l.contains(uiOnly))
                    .findFirst().orElse(""));
        }
    }

    @Test
    void theAgentCreatesNoServiceOfTheMicronautModulesItLeavesOutAndStillAnswers() throws Exception {
        // The services that the jar lists in those packages: bean definitions and introspections
        // under META-INF/micronaut, converters and type information under META-INF/services.
        Set<String> leftOut = new TreeSet<>();
        JarServices.list(AgentProcess.jar()).values().forEach(leftOut::addAll);
        leftOut.addAll(serviceFileNames(AgentProcess.jar()));
        leftOut.removeIf(n -> !Main.UNUSED_MICRONAUT_PACKAGES.contains(JarServices.packageOf(n)));
        assertTrue(leftOut.size() > 60, "the jar carries the modules the agent leaves out: " + leftOut);
        assertTrue(leftOut.contains("io.micronaut.http.ssl.$ServerSslConfiguration$Definition"), leftOut.toString());
        assertTrue(leftOut.contains("io.micronaut.http.HttpTypeConverterRegistrar"), leftOut.toString());
        TestFleet fleet = new TestFleet(home);
        Path settings = home.resolve("agent.yml");
        Files.writeString(settings, fleet.localAgentSettings(home.resolve("state"), fleet.agentCert("agent")));
        Path log = home.resolve("agent-classes.txt");
        try (AgentProcess agent = AgentProcess.start(List.of("-Xlog:class+load=info:file=" + log), settings, Map.of())) {
            AgentEndpoint endpoint = new AgentEndpoint("127.0.0.1", agent.awaitListening(Duration.ofSeconds(60)), null);
            try (AgentClient client = new AgentClient(endpoint, fleet.client("controller").sslContext(), Duration.ofSeconds(10))) {
                assertEquals(Mode.MODE_LOCAL, client.status().getMode());
            }
        }
        Set<String> loaded = new TreeSet<>();
        Matcher m = Pattern.compile("^\\S+ (\\S+) source:", Pattern.MULTILINE).matcher(Files.readString(log, StandardCharsets.UTF_8));
        while (m.find()) {
            loaded.add(m.group(1));
        }
        assertTrue(loaded.contains("io.micronaut.grpc.server.$GrpcEmbeddedServer$Definition"), "the gRPC server's definition loaded");
        assertFalse(loaded.contains("jdk.nio.zipfs.ZipFileSystem"), "the agent opened a zip file system");
        assertTrue(loaded.contains("dev.kiln.agent.startup.AotServices"), "the AOT service lists were used");
        try (JarFile jar = new JarFile(AgentProcess.jar().toFile())) {
            List<String> loaders = Collections.list(jar.entries()).stream().map(JarEntry::getName)
                    .filter(n -> n.startsWith("dev/kiln/agent/aot/") && n.endsWith("Factory.class")).toList();
            assertEquals(List.of(), loaders, "AOT's own service loaders are not in the jar");
        }
        loaded.retainAll(leftOut);
        assertTrue(loaded.isEmpty(), "services of modules the agent leaves out, loaded all the same: " + loaded);
    }

    /** The class names in the jar's META-INF/services files, read as JarServices reads them. */
    private static Set<String> serviceFileNames(Path jar) throws IOException {
        Set<String> names = new TreeSet<>();
        try (JarFile file = new JarFile(jar.toFile())) {
            for (JarEntry e : Collections.list(file.entries())) {
                if (e.getName().startsWith("META-INF/services/") && !e.isDirectory()) {
                    names.addAll(JarServices.serviceFileNames(new URL("jar:" + jar.toUri() + "!/" + e.getName())));
                }
            }
        }
        return names;
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
