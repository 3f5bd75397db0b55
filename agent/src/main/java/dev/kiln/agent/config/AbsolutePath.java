package dev.kiln.agent.config;

import io.micronaut.core.annotation.Introspected;
import jakarta.validation.Constraint;
import jakarta.validation.ConstraintValidator;
import jakarta.validation.ConstraintValidatorContext;
import jakarta.validation.Payload;

import java.lang.annotation.Documented;
import java.lang.annotation.ElementType;
import java.lang.annotation.Retention;
import java.lang.annotation.RetentionPolicy;
import java.lang.annotation.Target;

/** A path setting (text or {@link java.nio.file.Path}) is absolute. Null is valid (an unset setting). */
@Documented
@Retention(RetentionPolicy.RUNTIME)
@Target({ElementType.FIELD, ElementType.METHOD, ElementType.PARAMETER})
@Constraint(validatedBy = AbsolutePath.Check.class)
public @interface AbsolutePath {
    String message() default "is not an absolute path";

    Class<?>[] groups() default {};

    Class<? extends Payload>[] payload() default {};

    /** The check. */
    @Introspected
    final class Check implements ConstraintValidator<AbsolutePath, Object> {
        @Override
        public boolean isValid(Object value, ConstraintValidatorContext context) {
            return value == null || SettingText.absolute(value.toString());
        }
    }
}
