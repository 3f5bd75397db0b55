package dev.kiln.agent.config;

import io.micronaut.context.annotation.ConfigurationProperties;
import io.micronaut.core.annotation.Nullable;
import io.micronaut.core.bind.annotation.Bindable;

import java.time.Duration;

/**
 * How builds run ({@code kiln.builds.*}).
 *
 * @param user         the unprivileged user builds run as when the agent is root (default {@code kiln});
 *                     a non-root agent runs builds as itself
 * @param profilesDir  a directory of {@code NAME.config} files (tup.config contents) written into
 *                     every tup work tree as {@code build-NAME/tup.config}
 * @param cancelGrace  time between TERM and KILL when a build is cancelled
 */
@ConfigurationProperties("kiln.builds")
public record BuildSettings(
        @Nullable String user,
        @Nullable String profilesDir,
        @Bindable(defaultValue = "10s") Duration cancelGrace) {
}
