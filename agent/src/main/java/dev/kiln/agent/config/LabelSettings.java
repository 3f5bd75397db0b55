package dev.kiln.agent.config;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.regex.Pattern;

/**
 * The instance's labels ({@code kiln.labels}, a map in agent.yml or user data), e.g.
 * {@code {pr: "3012", branch: main}}. The boot script and every service see each as
 * {@code KILN_LABEL_<KEY>} (the key upper-cased, every character other than a letter or digit
 * turned into {@code _}): {@code KILN_LABEL_PR=3012}.
 */
public final class LabelSettings {

    /** The setting that holds the map. */
    public static final String KEY = "kiln.labels";

    private static final Pattern NAME = Pattern.compile("[A-Za-z0-9][A-Za-z0-9_-]{0,62}");
    private static final String ACCEPTS = "a map of labels such as {pr: \"3012\", branch: main}";

    private LabelSettings() {
    }

    /** Whether a flattened key belongs to the labels. */
    public static boolean owns(String normalKey) {
        return normalKey.equals(KEY) || normalKey.startsWith(KEY + ".") || normalKey.startsWith(KEY + "[");
    }

    /** The environment variable a label reaches the boot script and services as. */
    public static String envName(String label) {
        StringBuilder b = new StringBuilder("KILN_LABEL_");
        for (char c : label.toUpperCase(Locale.ROOT).toCharArray()) {
            b.append(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ? c : '_');
        }
        return b.toString();
    }

    /**
     * Problems with the {@code kiln.labels} keys of one source, each naming the key.
     *
     * @param settings every flattened key of that source (others are ignored)
     */
    public static List<String> problems(String source, Map<String, ?> settings) {
        List<String> problems = new ArrayList<>();
        Map<String, String> byEnv = new LinkedHashMap<>();
        for (Map.Entry<String, ?> e : settings.entrySet()) {
            if (!owns(SettingsCatalog.normalise(e.getKey()))) {
                continue;
            }
            String key = e.getKey();
            Object value = e.getValue();
            Map<String, Object> labels = new LinkedHashMap<>();
            if (key.equals(KEY)) {
                if (!(value instanceof Map<?, ?> m)) {
                    problems.add("setting '" + key + "' in " + source + " must be " + ACCEPTS + ", not "
                            + (value instanceof List<?> ? "a list" : "'" + value + "'"));
                    continue;
                }
                m.forEach((k, v) -> labels.put(String.valueOf(k), v));
            } else if (key.startsWith(KEY + ".")) {
                labels.put(key.substring(KEY.length() + 1), value);
            } else {
                problems.add("setting '" + key + "' in " + source + " must be " + ACCEPTS);
                continue;
            }
            labels.forEach((name, v) -> {
                String shown = KEY + "." + name;
                if (!NAME.matcher(name).matches()) {
                    problems.add("setting '" + shown + "' in " + source + ": '" + name + "' is not a label name (1-63"
                            + " letters, digits, '_' or '-', starting with a letter or digit)");
                } else if (v instanceof Map<?, ?> || v instanceof List<?>) {
                    problems.add("setting '" + shown + "' in " + source + " must be a single value (the label's value)");
                } else {
                    String earlier = byEnv.putIfAbsent(envName(name), name);
                    if (earlier != null && !earlier.equals(name)) {
                        problems.add("settings '" + KEY + "." + earlier + "' and '" + shown + "' in " + source
                                + " both become the environment variable " + envName(name) + "; rename one");
                    }
                }
            });
        }
        return problems;
    }

    /** The labels from a validated map (values as text). */
    public static Map<String, String> parse(Map<?, ?> raw) {
        Map<String, String> labels = new LinkedHashMap<>();
        raw.forEach((k, v) -> labels.put(String.valueOf(k), v == null ? "" : String.valueOf(v)));
        return labels;
    }
}
