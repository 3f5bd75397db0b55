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
@ConfigurationProperties(TlsSettings.PREFIX)
public record TlsSettings(@Nullable String cert, @Nullable String key, @Nullable String ca) {

    static final String PREFIX = "kiln.tls";

    static final SettingRules RULES = SettingRules.of(TlsSettings.class, PREFIX)
            .add("cert", "a PEM file path or PEM text", SettingCheck.TEXT, SettingCheck::filled)
            .add("key", "a PEM file path or PEM text", SettingCheck.TEXT, SettingCheck::filled)
            .add("ca", "a PEM file path or PEM text", SettingCheck.TEXT, SettingCheck::filled);

    public TlsSettings {
        RULES.check(cert, key, ca);
    }
}
