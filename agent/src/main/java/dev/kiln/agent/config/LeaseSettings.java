package dev.kiln.agent.config;

import io.micronaut.context.annotation.ConfigurationProperties;
import io.micronaut.core.annotation.Introspected;
import jakarta.validation.constraints.Pattern;
import io.micronaut.core.annotation.Nullable;
import io.micronaut.core.bind.annotation.Bindable;

import java.time.Duration;

/**
 * When the agent ends its instance ({@code kiln.lease.*}).
 *
 * @param ttl             time from the first start to the deadline; required in ec2 mode unless {@code forever}
 * @param maxLifetime     the longest any extension may stretch the lease, from the first start
 * @param forever         no deadline, by explicit choice
 * @param fallbackTtl     the lease of an ec2-mode agent whose user data cannot be used and has no usable ttl
 * @param idleTimeout     end after this long with nothing to do (no build, SSH session, log stream,
 *                        mount operation); unset: never for idleness
 * @param rebalance       what a rebalance recommendation does: {@code warn} or {@code drain}
 * @param drainBudget     the time draining may take before power-off (a spot notice's own deadline
 *                        shortens it)
 * @param backstop        the mechanism outside the JVM that ends the instance if the agent cannot:
 *                        {@code systemd} (a transient systemd timer), {@code command}, or {@code none}
 * @param backstopCommand for {@code backstop: command}: a program run with the backstop's time
 *                        (ISO-8601, UTC) as its one argument
 * @param backstopGrace   how long after the deadline the backstop fires
 * @param powerOff        how the instance ends: {@code systemd} ({@code systemctl poweroff}) or
 *                        {@code exit} (the agent process ends; local mode)
 * @param imdsPoll        how often IMDS is checked for interruption notices (ec2 mode)
 */
@Introspected
@ConfigurationProperties("kiln.lease")
public record LeaseSettings(
        @Accepts("a positive duration such as 2h") @Nullable Duration ttl,
        @Accepts("a positive duration such as 12h") @PositiveDuration @Bindable(defaultValue = "12h") Duration maxLifetime,
        @Accepts("true or false") @Bindable(defaultValue = "false") boolean forever,
        @Accepts("a positive duration such as 30m") @PositiveDuration @Nullable Duration fallbackTtl,
        @Accepts("a positive duration such as 30m") @PositiveDuration @Nullable Duration idleTimeout,
        @Accepts("'warn' or 'drain'") @Pattern(regexp = "\\s*(warn|drain)\\s*", message = "is not one of warn, drain")
        @Bindable(defaultValue = "warn") String rebalance,
        @Accepts("a positive duration such as 100s") @PositiveDuration @Bindable(defaultValue = "100s") Duration drainBudget,
        @Accepts("'systemd', 'command' or 'none'")
        @Pattern(regexp = "\\s*(systemd|command|none)\\s*", message = "is not one of systemd, command, none")
        @Nullable String backstop,
        @Accepts("an absolute path of a program") @AbsolutePath @Nullable String backstopCommand,
        @Accepts("a positive duration such as 10m") @PositiveDuration @Bindable(defaultValue = "10m") Duration backstopGrace,
        @Accepts("'systemd' or 'exit'") @Pattern(regexp = "\\s*(systemd|exit)\\s*", message = "is not one of systemd, exit")
        @Nullable String powerOff,
        @Accepts("a positive duration such as 5s") @PositiveDuration @Bindable(defaultValue = "5s") Duration imdsPoll) {
}
