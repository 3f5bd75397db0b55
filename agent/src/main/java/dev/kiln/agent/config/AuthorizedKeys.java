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

/** A keys setting is an absolute path or authorized_keys text (several words or lines). Null is valid (an unset setting). */
@Documented
@Retention(RetentionPolicy.RUNTIME)
@Target({ElementType.FIELD, ElementType.METHOD, ElementType.PARAMETER})
@Constraint(validatedBy = AuthorizedKeys.Check.class)
public @interface AuthorizedKeys {
    String message() default "is neither an absolute path nor authorized_keys text";

    Class<?>[] groups() default {};

    Class<? extends Payload>[] payload() default {};

    /** The check. */
    @Introspected
    final class Check implements ConstraintValidator<AuthorizedKeys, Object> {
        @Override
        public boolean isValid(Object value, ConstraintValidatorContext context) {
            return value == null || SettingText.keys(value.toString());
        }
    }
}
