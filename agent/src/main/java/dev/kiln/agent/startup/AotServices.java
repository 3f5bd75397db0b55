package dev.kiln.agent.startup;

import dev.kiln.startup.JarServices;
import io.micronaut.core.io.service.SoftServiceLoader;
import io.micronaut.core.optim.StaticOptimizations;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URL;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The agent's Micronaut service lists, computed at build time by Micronaut AOT (src/aot/MicronautAot.java
 * writes them to {@link #RESOURCE}) and created one after the other as Micronaut asks for them.
 *
 * <p>The jar carries no AOT service loaders: those start a class load per service on the common
 * fork-join pool and hold a lambda per service, about 150 classes more in every agent's memory and
 * class-data archive, and two pool threads, for a start that has no idle core to load them on.
 */
public final class AotServices implements StaticOptimizations.Loader<SoftServiceLoader.Optimizations> {

    /**
     * The lists in the agent's jar: {@code SERVICE_TYPE IMPLEMENTATION} a line, and each type on a
     * line of its own (a type Micronaut asks for that is not listed is scanned for in the jar).
     */
    public static final String RESOURCE = "dev/kiln/agent/aot/services";

    @Override
    public SoftServiceLoader.Optimizations load() {
        URL lists = AotServices.class.getClassLoader().getResource(RESOURCE);
        if (lists == null) {
            throw new IllegalStateException(RESOURCE + " is missing from the kiln-agent jar");
        }
        try {
            return JarServices.listed(parse(JarServices.serviceFileNames(lists)));
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + RESOURCE + " from the kiln-agent jar: " + e.getMessage(), e);
        }
    }

    /** Service type to implementations, in the lists' order, from lines of {@code TYPE [IMPLEMENTATION]}. */
    static Map<String, List<String>> parse(List<String> lines) {
        Map<String, List<String>> services = new LinkedHashMap<>();
        for (String line : lines) {
            String[] words = line.split("\\s+");
            if (words.length > 2) {
                throw new IllegalStateException(RESOURCE + " in the kiln-agent jar has a line that is not a service type and"
                        + " at most one implementation: '" + line + "'; rebuild the jar (mvn -pl agent -am package)");
            }
            List<String> names = services.computeIfAbsent(words[0], t -> new ArrayList<>());
            if (words.length == 2) {
                names.add(words[1]);
            }
        }
        return services;
    }
}
