package dev.kiln.agent.config;

import io.micronaut.context.annotation.ConfigurationProperties;
import io.micronaut.core.annotation.Introspected;
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
@Introspected
@ConfigurationProperties("kiln.builds")
public record BuildSettings(
        @Accepts("an unprivileged user name") @Filled @Nullable String user,
        @Accepts("an absolute path") @AbsolutePath @Nullable String profilesDir,
        @Accepts("a duration such as 10s") @Bindable(defaultValue = "10s") Duration cancelGrace) {
}
