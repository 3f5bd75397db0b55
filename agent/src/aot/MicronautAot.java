import dev.kiln.agent.Main;
import dev.kiln.agent.startup.AotServices;
import dev.kiln.startup.JarServices;
import io.micronaut.core.io.service.SoftServiceLoader;
import io.micronaut.core.optim.StaticOptimizations;

import java.io.File;
import java.io.IOException;
import java.io.InputStream;
import java.net.URL;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Enumeration;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.jar.JarEntry;
import java.util.jar.JarFile;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * Runs Micronaut AOT's optimiser on the agent's classes at package time (the {@code micronaut-aot}
 * profile of agent/pom.xml) and puts what it generates into target/classes, for the shade plugin.
 * Micronaut's own command line ({@code micronaut-aot-cli}) is not served here; its optimiser
 * ({@code micronaut-aot-api}) is, and this is the part of the command line Kiln needs.
 *
 * <p>Arguments: the AOT configuration (aot.properties), the classes directory, the work directory.
 * The service implementations of the agent's unused Micronaut modules
 * ({@link Main#UNUSED_MICRONAUT_PACKAGES}) are rejected, as {@link JarServices#install(java.util.Set)}
 * leaves them out.
 */
public final class MicronautAot {

    public static void main(String[] args) throws IOException {
        Path config = Path.of(args[0]);
        Path classes = Path.of(args[1]);
        Path work = Path.of(args[2]);
        deleteTree(work); // the optimiser appends to service files left by an earlier run
        Properties props = new Properties();
        try (InputStream in = Files.newInputStream(config)) {
            props.load(in);
        }
        String classPath = System.getProperty("java.class.path");
        props.put("classpath", String.join(",", classPath.split(File.pathSeparator)));
        props.put("package", "dev.kiln.agent.aot");
        props.put("output.directory", work.toString());
        props.put("runtime", "jit");
        props.put("serviceloading.rejected.impls", String.join(",", rejected(classPath)));
        Set<String> allowed = Set.of(((String) props.remove(ALLOWED_SKIPS)).split("\\s*,\\s*"));
        io.micronaut.aot.MicronautAotOptimizer.execute(props);
        checkSkips(work.resolve("logs/serviceloading.log"), allowed);

        // The generated classes, without their service registrations: on another program's class
        // path (the end-to-end tests run the CLI in-process beside the agent's jar) those would
        // hand it the agent's service lists. The agent's Main installs the optimisations itself,
        // from the list written here.
        Path generated = work.resolve("classes");
        Path services = generated.resolve("META-INF/services");
        try (Stream<Path> files = Files.walk(generated)) {
            for (Path f : (Iterable<Path>) files.filter(Files::isRegularFile)::iterator) {
                if (f.startsWith(services)) {
                    continue;
                }
                Path target = classes.resolve(generated.relativize(f).toString());
                Files.createDirectories(target.getParent());
                Files.copy(f, target, StandardCopyOption.REPLACE_EXISTING);
            }
        }
        // AOT's service loaders are replaced by their lists, which AotServices reads (without the
        // loaders' fork-join pool and a lambda per service). The loaders find the services through
        // the class path, which has the generated classes from here on.
        Set<String> replaced = new java.util.HashSet<>();
        Map<String, List<String>> lists = serviceLists(generated, replaced);
        for (String name : replaced) {
            Files.delete(classes.resolve(name.replace('.', '/') + ".class"));
        }
        for (String registration : List.of("io.micronaut.core.optim.StaticOptimizations$Loader",
                "io.micronaut.context.ApplicationContextConfigurer")) {
            Files.deleteIfExists(classes.resolve("META-INF/services/" + registration));
        }
        Path loaders = classes.resolve(Main.AOT_OPTIMIZATIONS);
        Files.createDirectories(loaders.getParent());
        List<String> optimizations = new ArrayList<>();
        for (String loader : Files.readAllLines(services.resolve("io.micronaut.core.optim.StaticOptimizations$Loader"))) {
            optimizations.add(loader.strip().equals(STATIC_SERVICES) ? AotServices.class.getName() : loader);
        }
        if (!optimizations.contains(AotServices.class.getName())) {
            throw new IllegalStateException("Micronaut AOT made no " + STATIC_SERVICES + ": " + optimizations);
        }
        Files.write(loaders, optimizations);
        List<String> lines = new ArrayList<>();
        lists.forEach((type, names) -> {
            lines.add(type); // listed even without implementations: a type not listed is scanned for
            names.forEach(n -> lines.add(type + " " + n));
        });
        Files.write(classes.resolve(AotServices.RESOURCE), lines);
        for (String resource : Files.readAllLines(work.resolve("logs/resource-filter.txt"))) {
            if (!resource.isBlank()) {
                Files.deleteIfExists(classes.resolve(resource));
            }
        }
    }

    /** The service loader AOT generates (serviceloading.jit), which {@link AotServices} replaces. */
    static final String STATIC_SERVICES = "dev.kiln.agent.aot.StaticServicesLoader";

    /**
     * What AOT's generated service loaders list (service type to implementations, in their order),
     * asked of the loaders themselves; {@code replaced} gets the generated classes this replaces.
     */
    @SuppressWarnings("unchecked")
    static Map<String, List<String>> serviceLists(Path generated, Set<String> replaced) throws IOException {
        Map<String, List<String>> lists = new java.util.LinkedHashMap<>();
        try (java.net.URLClassLoader loader = new java.net.URLClassLoader(new URL[] {generated.toUri().toURL()},
                MicronautAot.class.getClassLoader())) {
            Class<?> type = Class.forName(STATIC_SERVICES, false, loader);
            SoftServiceLoader.Optimizations optimizations = ((StaticOptimizations.Loader<SoftServiceLoader.Optimizations>)
                    type.getDeclaredConstructor().newInstance()).load();
            replaced.add(STATIC_SERVICES);
            new java.util.TreeMap<>(optimizations.getServiceLoaders()).forEach((service, serviceLoader) -> {
                replaced.add(serviceLoader.getClass().getName());
                lists.put(service, serviceLoader.findAll(n -> true).map(SoftServiceLoader.StaticDefinition::getName).toList());
            });
        } catch (ReflectiveOperationException e) {
            throw new IllegalStateException("cannot read Micronaut AOT's service lists: " + e, e);
        }
        if (lists.getOrDefault("io.micronaut.inject.BeanDefinitionReference", List.of()).size() < 10) {
            throw new IllegalStateException("Micronaut AOT's service lists name too few bean definitions: " + lists);
        }
        return lists;
    }

    /** The key of aot.properties listing the bean definitions AOT may leave out (this class's, not the optimiser's). */
    static final String ALLOWED_SKIPS = "kiln.aot.allowed-skips";

    /**
     * Fails the build when the optimiser left out a bean definition because its requirements fail
     * on the build machine, unless aot.properties allows it: a bean that needs a setting (a user's
     * {@code logger.levels}, say) would otherwise be missing from the packaged agent with no message.
     */
    static void checkSkips(Path log, Set<String> allowed) throws IOException {
        Pattern skip = Pattern.compile("^Skipping class (\\S+) because it doesn't match bean requirements$");
        List<String> unexpected = new ArrayList<>();
        for (String line : Files.readAllLines(log)) {
            Matcher m = skip.matcher(line.strip());
            if (m.matches() && !allowed.contains(m.group(1))) {
                unexpected.add(m.group(1));
            }
        }
        if (!unexpected.isEmpty()) {
            throw new IllegalStateException("Micronaut AOT leaves out " + unexpected + ": their requirements fail on the"
                    + " build machine. A bean that can be wanted at run time goes into serviceloading.force.include.impls"
                    + " in agent/src/aot/aot.properties; one the agent never uses, into " + ALLOWED_SKIPS + " there.");
        }
    }

    private static void deleteTree(Path dir) throws IOException {
        if (Files.exists(dir)) {
            try (Stream<Path> files = Files.walk(dir)) {
                for (Path f : (Iterable<Path>) files.sorted(java.util.Comparator.reverseOrder())::iterator) {
                    Files.delete(f);
                }
            }
        }
    }

    /** The service implementations on the class path whose package is one of the agent's unused ones. */
    private static List<String> rejected(String classPath) throws IOException {
        List<String> names = new ArrayList<>();
        for (String element : classPath.split(File.pathSeparator)) {
            if (element.endsWith(".jar")) {
                names.addAll(flatten(JarServices.list(Path.of(element)).values()));
            }
        }
        Enumeration<URL> dirs = MicronautAot.class.getClassLoader().getResources("META-INF/services");
        while (dirs.hasMoreElements()) {
            URL dir = dirs.nextElement();
            if (dir.getProtocol().equals("jar")) {
                String jar = dir.getPath().substring("file:".length(), dir.getPath().indexOf("!/"));
                try (JarFile file = new JarFile(jar)) {
                    for (JarEntry e : (Iterable<JarEntry>) file.stream()::iterator) {
                        if (e.getName().startsWith("META-INF/services/") && !e.isDirectory()) {
                            names.addAll(JarServices.serviceFileNames(new URL("jar:file:" + jar + "!/" + e.getName())));
                        }
                    }
                }
            }
        }
        return names.stream().filter(n -> Main.UNUSED_MICRONAUT_PACKAGES.contains(JarServices.packageOf(n)))
                .distinct().sorted().toList();
    }

    private static List<String> flatten(java.util.Collection<List<String>> lists) {
        List<String> all = new ArrayList<>();
        lists.forEach(all::addAll);
        return all;
    }
}
