package dev.kiln.agent.config;

import io.micronaut.context.annotation.ConfigurationProperties;
import io.micronaut.core.bind.annotation.Bindable;

/**
 * Where the agent's gRPC server listens ({@code kiln.grpc.*}).
 *
 * @param host bind address; loopback by default so nothing is exposed by accident
 * @param port TCP port; 0 picks a free one (tests)
 */
@ConfigurationProperties("kiln.grpc")
public record GrpcSettings(
        @Bindable(defaultValue = "127.0.0.1") String host,
        @Bindable(defaultValue = "7443") int port) {
}
