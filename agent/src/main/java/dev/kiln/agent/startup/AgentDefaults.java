package dev.kiln.agent.startup;

import io.micronaut.context.ApplicationContext;
import io.micronaut.context.ApplicationContextBuilder;
import io.micronaut.context.env.AbstractPropertySourceLoader;
import io.micronaut.context.env.PropertySource;
import io.micronaut.context.env.yaml.YamlPropertySourceLoader;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.util.Map;

/**
 * kiln-agent's built-in settings ({@code kiln-agent-defaults.yml} in the jar), given to the
 * agent's application context at the place Micronaut gives its {@code application.yml}: below
 * agent.yml, user data and the environment.
 *
 * <p>Not an {@code application.yml}: to read one from a jar, Micronaut's class path resource loader
 * opens the whole jar as a zip file system (building its index of ~15,000 entries) and closes it
 * again. The class loader reads the same bytes from the jar it already has open.
 */
public final class AgentDefaults {

    /** The resource, and the name its settings carry in messages. */
    public static final String RESOURCE = "kiln-agent-defaults.yml";

    private static volatile PropertySource source;

    private AgentDefaults() {
    }

    /** A context builder as the agent uses them: no banner, no cloud deduction, the built-in settings. */
    public static ApplicationContextBuilder contextBuilder() {
        return ApplicationContext.builder().banner(false).deduceEnvironment(false).propertySources(source());
    }

    /** The built-in settings, read once. */
    public static PropertySource source() {
        PropertySource s = source;
        if (s == null) {
            try (InputStream in = AgentDefaults.class.getClassLoader().getResourceAsStream(RESOURCE)) {
                if (in == null) {
                    throw new IllegalStateException(RESOURCE + " is missing from the kiln-agent jar");
                }
                Map<String, Object> values = new YamlPropertySourceLoader().read(RESOURCE, in);
                s = PropertySource.of(RESOURCE, values, AbstractPropertySourceLoader.DEFAULT_POSITION);
            } catch (IOException e) {
                throw new UncheckedIOException("cannot read " + RESOURCE + " from the kiln-agent jar: " + e.getMessage(), e);
            }
            source = s;
        }
        return s;
    }
}
