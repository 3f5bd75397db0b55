package dev.kiln.agent.config;

import io.micronaut.context.annotation.ConfigurationProperties;
import io.micronaut.core.annotation.Nullable;
import io.micronaut.core.bind.annotation.Bindable;

import java.time.Duration;

/**
 * How the agent reaches the EC2 instance metadata service ({@code kiln.imds.*}); ec2 mode only.
 *
 * @param endpoint override of the IMDS endpoint (tests point it at amazon-ec2-metadata-mock);
 *                 unset means the SDK default (http://169.254.169.254)
 * @param timeout  how long to keep trying IMDS at start-up before giving up
 */
@ConfigurationProperties(ImdsSettings.PREFIX)
public record ImdsSettings(
        @Nullable String endpoint,
        @Bindable(defaultValue = "30s") Duration timeout) {

    static final String PREFIX = "kiln.imds";

    static final SettingRules RULES = SettingRules.of(ImdsSettings.class, PREFIX)
            .add("endpoint", "an http:// URL", SettingCheck.TEXT, SettingCheck::httpUrl)
            .add("timeout", "a duration such as 30s, 5m or PT30S", SettingCheck.DURATION, SettingCheck::any);

    public ImdsSettings {
        RULES.check(endpoint, timeout);
    }
}
