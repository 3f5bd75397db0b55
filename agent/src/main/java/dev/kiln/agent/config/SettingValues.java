package dev.kiln.agent.config;

import dev.kiln.time.Durations;
import io.micronaut.core.beans.BeanIntrospection;
import io.micronaut.core.beans.BeanProperty;
import io.micronaut.core.type.Argument;
import io.micronaut.validation.validator.DefaultValidatorConfiguration;
import jakarta.validation.ConstraintViolation;

import java.nio.file.InvalidPathException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.function.Consumer;

/**
 * Checks one setting's text as its record component would bind it: converts it to the
 * component's type, then applies the component's Bean Validation constraints. A failure throws
 * {@link IllegalArgumentException} with what is wrong, naming the value as written, e.g.
 * "'relative/dir' is not an absolute path" or "70000 is out of range".
 */
final class SettingValues {

    private SettingValues() {
    }

    /** The check of one record component's setting. */
    static Consumer<String> check(BeanIntrospection<?> bean, BeanProperty<?, ?> property) {
        Class<?> beanType = bean.getBeanType();
        String name = property.getName();
        Argument<?> type = property.asArgument();
        return raw -> {
            Object value = convert(type, raw);
            @SuppressWarnings({"unchecked", "rawtypes"})
            Set<ConstraintViolation<?>> violations = (Set) Holder.VALIDATOR.validateValue(beanType, name, value);
            if (violations.isEmpty()) {
                return;
            }
            // A blank value has nothing to show: its constraint's message says so alone.
            ConstraintViolation<?> first = violations.stream()
                    .min(Comparator.comparing((ConstraintViolation<?> v) -> !isFilled(v))
                            .thenComparing(ConstraintViolation::getMessage))
                    .orElseThrow();
            if (isFilled(first)) {
                throw new IllegalArgumentException(first.getMessage());
            }
            Object invalid = first.getInvalidValue();
            String shown = invalid instanceof Number n ? String.valueOf(n) : "'" + raw + "'";
            throw new IllegalArgumentException(shown + " " + first.getMessage());
        };
    }

    private static boolean isFilled(ConstraintViolation<?> v) {
        return v.getConstraintDescriptor().getAnnotation() instanceof Filled;
    }

    /** The text as the component's type; a list is one element or several separated by commas. */
    private static Object convert(Argument<?> type, String raw) {
        if (java.util.Collection.class.isAssignableFrom(type.getType())) {
            Argument<?> element = type.getFirstTypeVariable().orElse(Argument.STRING);
            List<Object> items = new ArrayList<>();
            for (String part : raw.split(",", -1)) {
                items.add(convert(element, part));
            }
            return items;
        }
        Class<?> t = type.getType();
        if (t == String.class) {
            return raw;
        }
        if (t == int.class || t == Integer.class) {
            try {
                return Integer.parseInt(raw.trim());
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("'" + raw.trim() + "' is not a number");
            }
        }
        if (t == boolean.class || t == Boolean.class) {
            String v = raw.trim().toLowerCase(Locale.ROOT);
            if (!v.equals("true") && !v.equals("false")) {
                throw new IllegalArgumentException("'" + raw + "' is not true or false");
            }
            return Boolean.valueOf(v);
        }
        if (t == Duration.class) {
            return Durations.parse(raw);
        }
        if (t == Path.class) {
            try {
                return Path.of(raw);
            } catch (InvalidPathException e) {
                throw new IllegalArgumentException("'" + raw + "' is not a path");
            }
        }
        if (t == AgentMode.class) {
            return AgentMode.parse(raw);
        }
        throw new IllegalStateException("no conversion of settings to " + t.getName());
    }

    /** The agent's one validator, which the application context uses too ({@link SettingsValidator}). */
    static SettingsValidator validator() {
        return Holder.VALIDATOR;
    }

    /** Created on first use, before the context starts. */
    private static final class Holder {
        static final SettingsValidator VALIDATOR =
                new SettingsValidator(new DefaultValidatorConfiguration().setPrependPropertyPath(false));
    }
}
