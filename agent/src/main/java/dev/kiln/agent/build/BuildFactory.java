package dev.kiln.agent.build;

import dev.kiln.agent.config.AgentSettings;
import dev.kiln.agent.config.BootBuildSettings;
import dev.kiln.agent.config.BuildSettings;
import io.micronaut.context.annotation.Bean;
import io.micronaut.context.annotation.Factory;
import jakarta.inject.Singleton;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.time.Clock;

/** Wires the build domain to its settings and the real OS. */
@Factory
public class BuildFactory {

    @Singleton
    TupProfiles tupProfiles(BuildSettings builds) {
        return new TupProfiles(builds.profilesDir() == null ? null : Path.of(builds.profilesDir()));
    }

    @Singleton
    @Bean(preDestroy = "close")
    BuildManager buildManager(AgentSettings agent, BuildSettings builds, Clock clock, TupProfiles profiles) {
        try {
            return new BuildManager(new BuildStore(agent.stateDir()), new OsProcessLauncher(), clock,
                    () -> BuildUser.resolve(builds.user()), profiles, builds.cancelGrace());
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read build records in " + agent.stateDir() + ": " + e.getMessage(), e);
        }
    }

    @Singleton
    BootBuild bootBuild(BuildManager builds, BootBuildSettings settings) {
        return new BootBuild(builds, settings, BootBuild.BOOT_ID);
    }
}
