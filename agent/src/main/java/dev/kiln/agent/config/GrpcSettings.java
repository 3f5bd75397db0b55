package dev.kiln.agent.config;

import io.micronaut.context.annotation.ConfigurationProperties;
import io.micronaut.core.bind.annotation.Bindable;

/**
 * Where the agent's gRPC server listens ({@code kiln.grpc.*}).
 *
 * @param host bind address; loopback by default so nothing is exposed by accident
 * @param port TCP port; 0 picks a free one (tests)
 */
@ConfigurationProperties(GrpcSettings.PREFIX)
public record GrpcSettings(
        @Bindable(defaultValue = "127.0.0.1") String host,
        @Bindable(defaultValue = "7443") int port) {

    static final String PREFIX = "kiln.grpc";

    static final SettingRules RULES = SettingRules.of(GrpcSettings.class, PREFIX)
            .add("host", "a bind address such as 127.0.0.1 or 0.0.0.0", SettingCheck.TEXT, SettingCheck::filled)
            .add("port", "a TCP port 0-65535", SettingCheck.NUMBER, SettingCheck.range(0, 65535, "is out of range"));

    public GrpcSettings {
        RULES.check(host, port);
    }
}
