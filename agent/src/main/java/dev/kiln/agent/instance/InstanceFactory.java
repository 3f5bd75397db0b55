package dev.kiln.agent.instance;

import dev.kiln.agent.build.BuildUser;
import dev.kiln.agent.build.OsProcessLauncher;
import dev.kiln.agent.config.BuildSettings;
import dev.kiln.agent.config.ImdsSettings;
import io.micronaut.context.annotation.Factory;
import jakarta.inject.Singleton;

import java.net.URI;
import java.time.Duration;

/** Wires the instance's checks to their settings and the real OS. */
@Factory
public class InstanceFactory {

    /**
     * How long each connection of the IMDS check may take. IMDS is on the instance's own link and
     * answers within milliseconds; the image's filter rejects at once. Only a filter that drops
     * makes the build user's probe wait this long, once, at start.
     */
    static final Duration IMDS_CHECK_TIMEOUT = Duration.ofSeconds(3);

    @Singleton
    ImdsRootOnly imdsRootOnly(ImdsSettings imds, BuildSettings builds) {
        return new ImdsRootOnly(imds.endpoint() == null ? null : URI.create(imds.endpoint()), new OsProcessLauncher(),
                () -> BuildUser.resolve(builds.user()), BuildUser.agentIsRoot(), IMDS_CHECK_TIMEOUT);
    }
}
