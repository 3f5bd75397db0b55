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

/** A duration setting is zero or longer. Null is valid (an unset setting). */
@Documented
@Retention(RetentionPolicy.RUNTIME)
@Target({ElementType.FIELD, ElementType.METHOD, ElementType.PARAMETER})
@Constraint(validatedBy = NonNegativeDuration.Check.class)
public @interface NonNegativeDuration {
    String message() default "is negative";

    Class<?>[] groups() default {};

    Class<? extends Payload>[] payload() default {};

    /** The check. */
    @Introspected
    final class Check implements ConstraintValidator<NonNegativeDuration, Object> {
        @Override
        public boolean isValid(Object value, ConstraintValidatorContext context) {
            return value == null || !((java.time.Duration) value).isNegative();
        }
    }
}
