package dev.kiln.agent.config;

import io.micronaut.context.annotation.ConfigurationProperties;
import io.micronaut.core.annotation.Introspected;
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
@Introspected
@ConfigurationProperties("kiln.snapshots")
public record SnapshotSettings(
        @Accepts("an absolute path") @AbsolutePath @Nullable Path store,
        @Accepts("an http:// URL") @HttpUrl @Nullable String ec2Endpoint,
        @Accepts("a positive duration such as 30s") @PositiveDuration @Bindable(defaultValue = "30s") Duration freezeLease,
        @Accepts("a duration such as 1m") @NonNegativeDuration @Bindable(defaultValue = "1m") Duration catchUp,
        @Accepts("a positive duration such as 1m") @PositiveDuration @Bindable(defaultValue = "1m") Duration retryBackoff,
        @Accepts("a positive duration such as 5m") @PositiveDuration @Bindable(defaultValue = "5m") Duration commandTimeout) {
}
