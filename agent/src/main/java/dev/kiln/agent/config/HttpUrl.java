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

/** An endpoint setting is an http:// or https:// URL with a host. Null is valid (an unset setting). */
@Documented
@Retention(RetentionPolicy.RUNTIME)
@Target({ElementType.FIELD, ElementType.METHOD, ElementType.PARAMETER})
@Constraint(validatedBy = HttpUrl.Check.class)
public @interface HttpUrl {
    String message() default "is not an http(s) URL";

    Class<?>[] groups() default {};

    Class<? extends Payload>[] payload() default {};

    /** The check. */
    @Introspected
    final class Check implements ConstraintValidator<HttpUrl, Object> {
        @Override
        public boolean isValid(Object value, ConstraintValidatorContext context) {
            return value == null || SettingText.httpUrl(value.toString());
        }
    }
}
