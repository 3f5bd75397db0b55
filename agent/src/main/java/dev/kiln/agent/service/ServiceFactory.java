package dev.kiln.agent.service;

import dev.kiln.agent.build.BootBuild;
import dev.kiln.agent.build.BuildManager;
import dev.kiln.agent.build.BuildUser;
import dev.kiln.agent.build.OsProcessLauncher;
import dev.kiln.agent.config.AgentSettings;
import dev.kiln.agent.config.BuildSettings;
import dev.kiln.agent.config.LabelSettings;
import dev.kiln.agent.config.ServiceSettings;
import io.micronaut.context.annotation.Bean;
import io.micronaut.context.annotation.Factory;
import io.micronaut.context.env.Environment;
import io.micronaut.context.env.EnvironmentPropertySource;
import io.micronaut.context.env.PropertySource;
import io.micronaut.context.env.SystemPropertiesPropertySource;
import io.micronaut.core.type.Argument;
import jakarta.inject.Singleton;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.time.Clock;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** Wires the boot script and the services to their settings ({@code kiln.labels}, {@code kiln.boot-script}, {@code kiln.services}). */
@Factory
public class ServiceFactory {

    @Singleton
    @Bean(preDestroy = "close")
    ServiceSupervisor serviceSupervisor(AgentSettings agent, BuildSettings builds, Environment environment, Clock clock) {
        // Each list and map whole, from the highest-precedence source (user data replaces agent.yml's).
        List<?> raw = environment.getProperty(ServiceSettings.KEY, Argument.listOf(Map.class)).orElse(List.of());
        try {
            return new ServiceSupervisor(ServiceSettings.parse(raw), labels(environment), agent.stateDir(),
                    new OsProcessLauncher(), () -> BuildUser.resolve(builds.user()), ServicePolicy.DEFAULT, clock);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot open the services' logs in " + agent.stateDir().resolve("services")
                    + ": " + e.getMessage(), e);
        }
    }

    /**
     * The labels as written: read from the settings sources themselves, lowest precedence first,
     * since the environment's own look-up turns {@code Team_Name} into {@code team-name}.
     */
    static Map<String, String> labels(Environment environment) {
        List<PropertySource> sources = new ArrayList<>(environment.getPropertySources());
        sources.sort(Comparator.comparingInt(PropertySource::getOrder));
        Map<String, String> labels = new LinkedHashMap<>();
        String prefix = LabelSettings.KEY + ".";
        for (PropertySource source : sources) {
            if (source.getName().equals(EnvironmentPropertySource.NAME)
                    || source.getName().equals(SystemPropertiesPropertySource.NAME)) {
                continue; // KILN_* variables cannot hold labels (SettingsCatalog refuses them)
            }
            for (String key : source) {
                Object value = source.get(key);
                if (key.equals(LabelSettings.KEY) && value instanceof Map<?, ?> m) {
                    labels.putAll(LabelSettings.parse(m));
                } else if (key.startsWith(prefix)) {
                    labels.put(key.substring(prefix.length()), value == null ? "" : String.valueOf(value));
                }
            }
        }
        return labels;
    }

    @Singleton
    BootScript bootScript(AgentSettings agent, BuildSettings builds, BuildManager buildManager, ServiceSupervisor services,
                          Environment environment) {
        return new BootScript(environment.getProperty("kiln.boot-script", String.class).orElse(null), buildManager,
                services, agent.stateDir(), BootBuild.BOOT_ID, () -> BuildUser.resolve(builds.user()));
    }
}
