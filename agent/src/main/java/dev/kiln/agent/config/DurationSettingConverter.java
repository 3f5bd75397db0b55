package dev.kiln.agent.config;

import dev.kiln.time.Durations;
import io.micronaut.core.convert.ConversionContext;
import io.micronaut.core.convert.TypeConverter;
import jakarta.inject.Singleton;

import java.time.Duration;
import java.util.Optional;

/**
 * Binds the agent's duration settings ({@code kiln.lease.ttl: 1h30m}) with {@link Durations},
 * the parser SettingsCatalog checks them with and the CLI reads its options with, in place of
 * Micronaut's own, which takes one number and unit only.
 */
@Singleton
public final class DurationSettingConverter implements TypeConverter<CharSequence, Duration> {

    @Override
    public Optional<Duration> convert(CharSequence text, Class<Duration> targetType, ConversionContext context) {
        try {
            return Optional.of(Durations.parse(text.toString()));
        } catch (IllegalArgumentException e) {
            context.reject(text, e);
            return Optional.empty();
        }
    }
}
