package dev.kiln.agent.config;

import io.micronaut.context.annotation.ConfigurationProperties;
import io.micronaut.core.annotation.Introspected;
import io.micronaut.core.annotation.Nullable;

/**
 * Mutual TLS material for the gRPC server ({@code kiln.tls.*}). Each value is either a file
 * path or the PEM text itself (user data carries inline PEM).
 *
 * @param cert the agent's certificate chain (PEM), issued by the fleet CA
 * @param key  the agent's private key (PKCS#8 PEM)
 * @param ca   the fleet CA certificate (PEM); client certificates must chain to it
 */
@Introspected
@ConfigurationProperties("kiln.tls")
public record TlsSettings(
        @Accepts("a PEM file path or PEM text") @Filled @Nullable String cert,
        @Accepts("a PEM file path or PEM text") @Filled @Nullable String key,
        @Accepts("a PEM file path or PEM text") @Filled @Nullable String ca) {
}
