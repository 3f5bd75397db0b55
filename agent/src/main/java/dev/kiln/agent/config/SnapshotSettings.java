package dev.kiln.agent.config;

import io.micronaut.context.annotation.ConfigurationProperties;
import io.micronaut.core.annotation.Nullable;
import io.micronaut.core.bind.annotation.Bindable;

import java.nio.file.Path;
import java.time.Duration;

/**
 * Where scheduled snapshots go and how runs behave ({@code kiln.snapshots.*}).
 *
 * @param store          local mode: the fleet's snapshot store, which {@code kiln launch} sets; none: no snapshots
 * @param ec2Endpoint    ec2 mode: an EC2 API endpoint in place of the region's (tests point it at moto)
 * @param freezeLease    the longest a scheduled run keeps its volume frozen; the snapshot call must return within it
 * @param catchUp        how long after start a run missed while the agent was down runs (once)
 * @param retryBackoff   the first wait after a failed run, doubled with each failure in a row (at most 1h)
 * @param commandTimeout the longest a pre or post command may run
 */
@ConfigurationProperties(SnapshotSettings.PREFIX)
public record SnapshotSettings(
        @Nullable Path store,
        @Nullable String ec2Endpoint,
        @Bindable(defaultValue = "30s") Duration freezeLease,
        @Bindable(defaultValue = "1m") Duration catchUp,
        @Bindable(defaultValue = "1m") Duration retryBackoff,
        @Bindable(defaultValue = "5m") Duration commandTimeout) {

    static final String PREFIX = "kiln.snapshots";

    static final SettingRules RULES = SettingRules.of(SnapshotSettings.class, PREFIX)
            .add("store", "an absolute path", SettingCheck.PATH, SettingCheck::absolute)
            .add("ec2Endpoint", "an http:// URL", SettingCheck.TEXT, SettingCheck::httpUrl)
            .add("freezeLease", "a positive duration such as 30s", SettingCheck.DURATION, SettingCheck::positive)
            .add("catchUp", "a duration such as 1m", SettingCheck.DURATION, SettingCheck::nonNegative)
            .add("retryBackoff", "a positive duration such as 1m", SettingCheck.DURATION, SettingCheck::positive)
            .add("commandTimeout", "a positive duration such as 5m", SettingCheck.DURATION, SettingCheck::positive);

    public SnapshotSettings {
        RULES.check(store, ec2Endpoint, freezeLease, catchUp, retryBackoff, commandTimeout);
    }
}
