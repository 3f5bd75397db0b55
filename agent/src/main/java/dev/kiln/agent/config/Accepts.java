package dev.kiln.agent.config;

import java.lang.annotation.Documented;
import java.lang.annotation.ElementType;
import java.lang.annotation.Retention;
import java.lang.annotation.RetentionPolicy;
import java.lang.annotation.Target;

/**
 * What a setting accepts, in the words its error messages use after "expected", e.g. "a TCP port
 * 0-65535". {@link SettingsCatalog} reads it from each settings record's component.
 */
@Documented
@Retention(RetentionPolicy.RUNTIME)
@Target({ElementType.FIELD, ElementType.METHOD, ElementType.PARAMETER})
public @interface Accepts {
    String value();
}
