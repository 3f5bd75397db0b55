package dev.kiln.agent.config;

import io.micronaut.context.annotation.ConfigurationProperties;
import io.micronaut.core.annotation.Nullable;

/**
 * Mutual TLS material for the gRPC server ({@code kiln.tls.*}). Each value is either a file
 * path or the PEM text itself (user data carries inline PEM).
 *
 * @param cert the agent's certificate chain (PEM), issued by the fleet CA
 * @param key  the agent's private key (PKCS#8 PEM)
 * @param ca   the fleet CA certificate (PEM); client certificates must chain to it
 */
@ConfigurationProperties("kiln.tls")
public record TlsSettings(@Nullable String cert, @Nullable String key, @Nullable String ca) {
}
