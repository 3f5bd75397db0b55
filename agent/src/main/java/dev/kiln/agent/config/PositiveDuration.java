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

/** A duration setting is longer than zero. Null is valid (an unset setting). */
@Documented
@Retention(RetentionPolicy.RUNTIME)
@Target({ElementType.FIELD, ElementType.METHOD, ElementType.PARAMETER})
@Constraint(validatedBy = PositiveDuration.Check.class)
public @interface PositiveDuration {
    String message() default "is not a positive duration";

    Class<?>[] groups() default {};

    Class<? extends Payload>[] payload() default {};

    /** The check. */
    @Introspected
    final class Check implements ConstraintValidator<PositiveDuration, Object> {
        @Override
        public boolean isValid(Object value, ConstraintValidatorContext context) {
            return value == null || !((java.time.Duration) value).isNegative() && !((java.time.Duration) value).isZero();
        }
    }
}
