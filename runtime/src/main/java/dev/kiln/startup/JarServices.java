package dev.kiln.startup;

import io.micronaut.core.io.service.SoftServiceLoader;
import io.micronaut.core.optim.StaticOptimizations;

import java.io.BufferedReader;
import java.io.File;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.UncheckedIOException;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.MethodType;
import java.net.URL;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.AbstractMap;
import java.util.ArrayList;
import java.util.Enumeration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Predicate;
import java.util.jar.JarEntry;
import java.util.jar.JarFile;
import java.util.stream.Stream;

/**
 * Micronaut's services listed from the application jar's own entries, for the CLI when it runs as
 * {@code java -jar} (the agent's jar has lists computed at build time by Micronaut AOT instead).
 *
 * <p>Micronaut 4 finds the services under {@code META-INF/micronaut/<service>/} (bean definitions,
 * introspections) by opening the jar as a zip file system and walking those directories, for the
 * first service type it looks up that way: for a fat jar of ~15,000 entries, building that file
 * system's index costs tens of milliseconds of every agent start and every CLI command, and its
 * garbage grows the agent's heap (docs/performance.md). A {@link JarFile} lists the same entry names
 * from the central directory the JDK already has open for the class loader. Micronaut's own hook
 * for this, {@link SoftServiceLoader.Optimizations} (what Micronaut AOT generates), takes a loader
 * per service type; {@link AllServices} answers for every type Micronaut asks about, with the class
 * names its scan would have found, and creates them as the scan would. Only when the class path is
 * exactly one jar, which then holds every service; otherwise (tests, IDEs) nothing changes.
 *
 * <p>A program may also name packages of Micronaut modules that its jar carries but it never uses
 * ({@link #install(Set)}): their services (bean definitions, introspections, converters) are not
 * created at all. Micronaut creates every listed bean definition at start-up to test its
 * conditions, so each unused module costs classes loaded, class-data archive and heap in every
 * process, for nothing.
 */
public final class JarServices {

    private static final String PREFIX = "META-INF/micronaut/";

    private JarServices() {
    }

    /**
     * Lists the jar's Micronaut services and hands them to Micronaut. Call before anything starts
     * Micronaut (its service loader reads the lists once, when its class initialises).
     *
     * @return the number of service types with entries under {@code META-INF/micronaut/}; 0 when
     *         not running from one jar (nothing changed)
     */
    public static int install() {
        return install(Set.of());
    }

    /**
     * As {@link #install()}, leaving out every service implementation whose class is in one of
     * these packages (exactly these: not their subpackages). Only for modules the program never
     * uses: a bean that something does need and that is left out makes Micronaut fail with "No
     * bean of type [...] exists" where it is first asked for (at start-up for most, later for a
     * bean created on first use), and only when running from the one jar: in-process tests still
     * see every bean, so the programs' end-to-end tests, which run the jars, are the check.
     *
     * @param unusedPackages package names, such as {@code io.micronaut.http.body}; a name ending in
     *                       {@code .*} (such as {@code io.micronaut.http.*}) also covers its subpackages
     */
    public static int install(Set<String> unusedPackages) {
        Path jar = singleJar(System.getProperty("java.class.path", ""));
        if (jar == null) {
            return 0;
        }
        Map<String, List<String>> meta;
        try {
            meta = list(jar);
        } catch (IOException e) {
            return 0; // Micronaut scans the jar itself, as it always did
        }
        try {
            StaticOptimizations.set(new SoftServiceLoader.Optimizations(new AllServices(meta,
                    JarServices.class.getClassLoader(), unusedPackages)));
        } catch (IllegalStateException e) {
            return 0; // Micronaut already read its optimisations: it scans, as it always did
        }
        return meta.size();
    }

    /**
     * Micronaut's optimisations for service lists made at build time (service type name to
     * implementation class names): each type's services created one after the other when Micronaut
     * first asks for them, as {@link #install()} creates the jar's. A type not listed is scanned
     * for by Micronaut.
     */
    public static SoftServiceLoader.Optimizations listed(Map<String, List<String>> lists) {
        Map<String, SoftServiceLoader.StaticServiceLoader<?>> loaders = new LinkedHashMap<>();
        ClassLoader loader = JarServices.class.getClassLoader();
        lists.forEach((type, names) -> loaders.put(type, new Listed<>(List.copyOf(names), loader)));
        return new SoftServiceLoader.Optimizations(loaders);
    }

    /** The one jar on the class path, or null when the class path is anything else. */
    static Path singleJar(String classPath) {
        if (classPath.isEmpty() || classPath.contains(File.pathSeparator) || !classPath.endsWith(".jar")) {
            return null;
        }
        Path jar = Path.of(classPath);
        return Files.isRegularFile(jar) ? jar : null;
    }

    /** Service type name to implementation class names, in the jar's entry order. */
    public static Map<String, List<String>> list(Path jar) throws IOException {
        Map<String, List<String>> services = new LinkedHashMap<>();
        // The class loader opens the jar for good at its first resource; opened first, its central
        // directory is the one this JarFile shares (the JDK keeps one per open file), so the jar's
        // directory is read once, not twice (docs/performance.md).
        JarServices.class.getClassLoader().getResource("META-INF/MANIFEST.MF");
        try (JarFile file = new JarFile(jar.toFile(), false)) {
            Enumeration<JarEntry> entries = file.entries();
            while (entries.hasMoreElements()) {
                String name = entries.nextElement().getName();
                if (!name.startsWith(PREFIX)) {
                    continue;
                }
                int slash = name.indexOf('/', PREFIX.length());
                if (slash <= PREFIX.length() || slash == name.length() - 1 || name.indexOf('/', slash + 1) >= 0) {
                    continue; // the directories themselves, or anything nested deeper
                }
                services.computeIfAbsent(name.substring(PREFIX.length(), slash), k -> new ArrayList<>())
                        .add(name.substring(slash + 1));
            }
        }
        return services;
    }

    /**
     * A loader for every service type Micronaut asks for, as its scanning loader would find them:
     * the class names in the class path's {@code META-INF/services/<type>} files, then the jar's
     * {@code META-INF/micronaut/<type>/} entries. Micronaut asks for types that have no entries
     * at all (such as {@code ApplicationContextCustomizer}), and any type it scanned for would open
     * the zip file system again, so every type gets an answer here.
     */
    private static final class AllServices extends AbstractMap<String, SoftServiceLoader.StaticServiceLoader<?>> {
        private final Map<String, List<String>> meta;
        private final ClassLoader loader;
        private final Set<String> unusedPackages;
        private final Map<String, SoftServiceLoader.StaticServiceLoader<?>> made = new ConcurrentHashMap<>();

        AllServices(Map<String, List<String>> meta, ClassLoader loader, Set<String> unusedPackages) {
            this.meta = meta;
            this.loader = loader;
            this.unusedPackages = unusedPackages;
        }

        @Override
        public SoftServiceLoader.StaticServiceLoader<?> get(Object type) {
            return type instanceof String name ? made.computeIfAbsent(name, this::make) : null;
        }

        @Override
        public boolean containsKey(Object type) {
            return type instanceof String;
        }

        @Override
        public Set<Entry<String, SoftServiceLoader.StaticServiceLoader<?>>> entrySet() {
            return made.entrySet();
        }

        private SoftServiceLoader.StaticServiceLoader<?> make(String type) {
            List<String> names = new ArrayList<>();
            try {
                Enumeration<URL> files = loader.getResources("META-INF/services/" + type);
                while (files.hasMoreElements()) {
                    names.addAll(serviceFileNames(files.nextElement()));
                }
            } catch (IOException e) {
                throw new UncheckedIOException("cannot read the service files of " + type + ": " + e.getMessage(), e);
            }
            names.addAll(meta.getOrDefault(type, List.of()));
            return new Listed<>(used(names, unusedPackages), loader);
        }
    }

    /** These class names without those whose package is one of the unused packages. */
    static List<String> used(List<String> classNames, Set<String> unusedPackages) {
        if (unusedPackages.isEmpty()) {
            return classNames;
        }
        List<String> trees = unusedPackages.stream().filter(p -> p.endsWith(".*"))
                .map(p -> p.substring(0, p.length() - 2)).toList();
        List<String> used = new ArrayList<>(classNames.size());
        for (String name : classNames) {
            String pkg = packageOf(name);
            if (!unusedPackages.contains(pkg) && !inTree(pkg, trees)) {
                used.add(name);
            }
        }
        return used;
    }

    /** Whether {@code pkg} is one of these packages or a subpackage of one. */
    private static boolean inTree(String pkg, List<String> trees) {
        for (String t : trees) {
            if (pkg.equals(t) || pkg.startsWith(t) && pkg.length() > t.length() && pkg.charAt(t.length()) == '.') {
                return true;
            }
        }
        return false;
    }

    /**
     * The package of a binary class name: everything before its last dot. Generated names such as
     * {@code io.micronaut.http.body.$TextPlainObjectBodyReader$Definition} keep their nesting in
     * the simple name, after that dot.
     */
    public static String packageOf(String className) {
        int dot = className.lastIndexOf('.');
        return dot < 0 ? "" : className.substring(0, dot);
    }

    /** The class names in one {@code META-INF/services} file: one a line, {@code #} comments. */
    public static List<String> serviceFileNames(URL file) throws IOException {
        List<String> names = new ArrayList<>();
        try (BufferedReader in = new BufferedReader(new InputStreamReader(file.openStream(), StandardCharsets.UTF_8))) {
            for (String line = in.readLine(); line != null; line = in.readLine()) {
                int hash = line.indexOf('#');
                String name = (hash >= 0 ? line.substring(0, hash) : line).trim();
                if (!name.isEmpty()) {
                    names.add(name);
                }
            }
        }
        return names;
    }

    /**
     * One service's implementations, created as Micronaut's scanning loader creates them: a class
     * that cannot be loaded, has no public no-argument constructor or needs a class that is absent
     * (an optional dependency) is left out; any other failure of its constructor is an error.
     */
    private static final class Listed<S> implements SoftServiceLoader.StaticServiceLoader<S> {
        private static final MethodType NO_ARGS = MethodType.methodType(void.class);
        private final List<String> names;
        private final ClassLoader loader;

        Listed(List<String> names, ClassLoader loader) {
            this.names = names;
            this.loader = loader;
        }

        @Override
        @SuppressWarnings("unchecked")
        public Stream<SoftServiceLoader.StaticDefinition<S>> findAll(Predicate<String> condition) {
            List<SoftServiceLoader.StaticDefinition<S>> found = new ArrayList<>(names.size());
            for (String name : names) {
                if (!condition.test(name)) {
                    continue;
                }
                S service;
                try {
                    MethodHandle constructor = MethodHandles.publicLookup()
                            .findConstructor(Class.forName(name, false, loader), NO_ARGS);
                    service = (S) constructor.invoke();
                } catch (NoClassDefFoundError | ClassNotFoundException | NoSuchMethodException | IllegalAccessException e) {
                    continue;
                } catch (Throwable e) {
                    throw new IllegalStateException("cannot create the Micronaut service " + name + ": " + e, e);
                }
                found.add(SoftServiceLoader.StaticDefinition.of(name, () -> service));
            }
            return found.stream();
        }
    }
}
