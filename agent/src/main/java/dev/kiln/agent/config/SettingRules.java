package dev.kiln.agent.config;

import java.lang.reflect.RecordComponent;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.function.Consumer;
import java.util.function.Function;

/**
 * What each component of one {@code @ConfigurationProperties} settings record accepts, and its
 * check. The record's compact constructor applies the checks to the values it is bound with
 * ({@link #check}); {@link SettingsCatalog} applies them to each source's text, one setting per
 * component ({@link #settings}), so both give the same message for the same bad value.
 */
final class SettingRules {

    private record Rule(String component, String accepts, Function<String, ?> read, SettingCheck.Check<Object> check) {
    }

    private final Class<? extends Record> type;
    private final String prefix;
    private final List<Rule> rules = new ArrayList<>();

    private SettingRules(Class<? extends Record> type, String prefix) {
        this.type = type;
        this.prefix = prefix;
    }

    /** The rules of a record bound from {@code prefix} (its {@code @ConfigurationProperties} value). */
    static SettingRules of(Class<? extends Record> type, String prefix) {
        return new SettingRules(type, prefix);
    }

    /**
     * The next component's rule, in the record's component order; a list component's rule is its
     * elements'.
     *
     * @param component the component's name
     * @param accepts   what it accepts, as error messages say after "expected"
     * @param read      reads the setting's text as the component's (element) type
     * @param check     the value's check
     */
    @SuppressWarnings("unchecked")
    <T> SettingRules add(String component, String accepts, Function<String, T> read,
                         SettingCheck.Check<? super T> check) {
        rules.add(new Rule(component, accepts, read, (SettingCheck.Check<Object>) check));
        return this;
    }

    /**
     * Checks the values a compact constructor receives, in component order; an unset (null)
     * value is not checked.
     *
     * @throws SettingException naming the setting, the value and what it accepts
     */
    void check(Object... values) {
        if (values.length != rules.size()) {
            throw new IllegalStateException(type.getSimpleName() + " checks " + values.length + " values but has "
                    + rules.size() + " rules");
        }
        for (int i = 0; i < values.length; i++) {
            Rule rule = rules.get(i);
            if (values[i] instanceof Collection<?> list) {
                for (Object element : list) {
                    check(rule, element);
                }
            } else if (values[i] != null) {
                check(rule, values[i]);
            }
        }
    }

    private void check(Rule rule, Object value) {
        try {
            rule.check().check(value, SettingCheck.show(value));
        } catch (IllegalArgumentException e) {
            throw new SettingException(key(rule), e.getMessage(), rule.accepts());
        }
    }

    /**
     * One setting per record component, keyed by the prefix and the component's name in
     * kebab-case. The components are read from the record, so a component without a rule, or a
     * rule without a component, fails here at once.
     */
    List<SettingsCatalog.Setting> settings() {
        RecordComponent[] components = type.getRecordComponents();
        List<SettingsCatalog.Setting> settings = new ArrayList<>();
        for (int i = 0; i < Math.max(components.length, rules.size()); i++) {
            String component = i < components.length ? components[i].getName() : "(none)";
            String ruled = i < rules.size() ? rules.get(i).component() : "(none)";
            if (!component.equals(ruled)) {
                throw new IllegalStateException(type.getSimpleName() + "'s component " + (i + 1) + " is " + component
                        + ", but its rule is for " + ruled + ": give each component a rule, in order");
            }
            Rule rule = rules.get(i);
            boolean list = Collection.class.isAssignableFrom(components[i].getType());
            settings.add(new SettingsCatalog.Setting(key(rule), rule.accepts(), textCheck(rule, list), list));
        }
        return settings;
    }

    /** Reads a setting's text as the component would be bound, then checks it; a list's text is comma-separated. */
    private static Consumer<String> textCheck(Rule rule, boolean list) {
        return raw -> {
            for (String part : list ? raw.split(",", -1) : new String[] {raw}) {
                Object value = rule.read().apply(part);
                rule.check().check(value, value instanceof Number n ? String.valueOf(n) : "'" + part + "'");
            }
        };
    }

    private String key(Rule rule) {
        return prefix + "." + SettingsCatalog.normalise(rule.component());
    }
}
