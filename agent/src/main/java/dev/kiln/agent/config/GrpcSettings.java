package dev.kiln.agent.config;

import io.micronaut.context.annotation.ConfigurationProperties;
import io.micronaut.core.annotation.Introspected;
import jakarta.validation.constraints.Max;
import jakarta.validation.constraints.Min;
import io.micronaut.core.bind.annotation.Bindable;

/**
 * Where the agent's gRPC server listens ({@code kiln.grpc.*}).
 *
 * @param host bind address; loopback by default so nothing is exposed by accident
 * @param port TCP port; 0 picks a free one (tests)
 */
@Introspected
@ConfigurationProperties("kiln.grpc")
public record GrpcSettings(
        @Accepts("a bind address such as 127.0.0.1 or 0.0.0.0") @Filled @Bindable(defaultValue = "127.0.0.1") String host,
        @Accepts("a TCP port 0-65535") @Min(value = 0, message = "is out of range") @Max(value = 65535, message = "is out of range")
        @Bindable(defaultValue = "7443") int port) {
}
