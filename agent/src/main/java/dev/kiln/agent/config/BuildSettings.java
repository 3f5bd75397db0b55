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
@ConfigurationProperties(BuildSettings.PREFIX)
public record BuildSettings(
        @Nullable String user,
        @Nullable String profilesDir,
        @Bindable(defaultValue = "10s") Duration cancelGrace) {

    static final String PREFIX = "kiln.builds";

    static final SettingRules RULES = SettingRules.of(BuildSettings.class, PREFIX)
            .add("user", "an unprivileged user name", SettingCheck.TEXT, SettingCheck::filled)
            .add("profilesDir", "an absolute path", SettingCheck.TEXT, SettingCheck::absolute)
            .add("cancelGrace", "a duration such as 10s", SettingCheck.DURATION, SettingCheck::any);

    public BuildSettings {
        RULES.check(user, profilesDir, cancelGrace);
    }
}
