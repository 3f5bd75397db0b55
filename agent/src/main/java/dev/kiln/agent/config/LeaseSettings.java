package dev.kiln.agent.config;

import io.micronaut.context.annotation.ConfigurationProperties;
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
@ConfigurationProperties(LeaseSettings.PREFIX)
public record LeaseSettings(
        @Nullable Duration ttl,
        @Bindable(defaultValue = "12h") Duration maxLifetime,
        @Bindable(defaultValue = "false") boolean forever,
        @Nullable Duration fallbackTtl,
        @Nullable Duration idleTimeout,
        @Bindable(defaultValue = "warn") String rebalance,
        @Bindable(defaultValue = "100s") Duration drainBudget,
        @Nullable String backstop,
        @Nullable String backstopCommand,
        @Bindable(defaultValue = "10m") Duration backstopGrace,
        @Nullable String powerOff,
        @Bindable(defaultValue = "5s") Duration imdsPoll) {

    static final String PREFIX = "kiln.lease";

    static final SettingRules RULES = SettingRules.of(LeaseSettings.class, PREFIX)
            .add("ttl", "a positive duration such as 2h", SettingCheck.DURATION, SettingCheck::any)
            .add("maxLifetime", "a positive duration such as 12h", SettingCheck.DURATION, SettingCheck::positive)
            .add("forever", "true or false", SettingCheck.BOOLEAN, SettingCheck::any)
            .add("fallbackTtl", "a positive duration such as 30m", SettingCheck.DURATION, SettingCheck::positive)
            .add("idleTimeout", "a positive duration such as 30m", SettingCheck.DURATION, SettingCheck::positive)
            .add("rebalance", "'warn' or 'drain'", SettingCheck.TEXT, SettingCheck.oneOf("warn", "drain"))
            .add("drainBudget", "a positive duration such as 100s", SettingCheck.DURATION, SettingCheck::positive)
            .add("backstop", "'systemd', 'command' or 'none'", SettingCheck.TEXT,
                    SettingCheck.oneOf("systemd", "command", "none"))
            .add("backstopCommand", "an absolute path of a program", SettingCheck.TEXT, SettingCheck::absolute)
            .add("backstopGrace", "a positive duration such as 10m", SettingCheck.DURATION, SettingCheck::positive)
            .add("powerOff", "'systemd' or 'exit'", SettingCheck.TEXT, SettingCheck.oneOf("systemd", "exit"))
            .add("imdsPoll", "a positive duration such as 5s", SettingCheck.DURATION, SettingCheck::positive);

    public LeaseSettings {
        RULES.check(ttl, maxLifetime, forever, fallbackTtl, idleTimeout, rebalance, drainBudget, backstop,
                backstopCommand, backstopGrace, powerOff, imdsPoll);
    }
}
