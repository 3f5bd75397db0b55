package dev.kiln.agent.config;

import dev.kiln.agent.schedule.ScheduleSpec;

import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;

/**
 * Snapshot schedules set at launch ({@code kiln.schedules}, a YAML list in agent.yml or user
 * data; {@code kiln schedule} sets them later, and the agent keeps them in its state):
 *
 * <pre>
 * kiln:
 *   schedules:
 *     - {role: data, every: 24h, at: "03:00", keep: 7, pre: "sqlite3 /mnt/data/app.db .tables", post: ""}
 * </pre>
 */
public final class ScheduleSettings {

    /** The setting that holds the list. */
    public static final String KEY = "kiln.schedules";

    private static final Set<String> FIELDS = Set.of("role", "every", "at", "keep", "pre", "post");

    private ScheduleSettings() {
    }

    /** Problems with the whole list, each naming the indexed key (kiln.schedules[0].every). */
    public static List<String> problems(String source, Object value) {
        List<String> problems = new ArrayList<>();
        if (!(value instanceof List<?> list)) {
            problems.add("setting '" + KEY + "' in " + source + " must be a list of schedules, each with role and every"
                    + " (e.g. - {role: data, every: 24h, keep: 7})");
            return problems;
        }
        for (int i = 0; i < list.size(); i++) {
            String prefix = KEY + "[" + i + "]";
            if (!(list.get(i) instanceof Map<?, ?> m)) {
                problems.add("setting '" + prefix + "' in " + source + " must be a map with role and every");
                continue;
            }
            try {
                spec(prefix, m);
            } catch (IllegalArgumentException e) {
                problems.add("invalid value for setting '" + prefix + "' in " + source + ": " + e.getMessage());
            }
        }
        return problems;
    }

    /** The problem with one flattened field ({@code kiln.schedules[0].keep}), if any. */
    public static Optional<String> fieldProblem(String source, String key, String field) {
        if (!FIELDS.contains(field)) {
            return Optional.of("unknown setting '" + key + "' in " + source + "; a schedule has " + String.join(", ",
                    List.of("role", "every", "at", "keep", "pre", "post")));
        }
        return Optional.empty();
    }

    /** Reads a validated list. */
    public static List<ScheduleSpec> parse(List<?> list) {
        List<ScheduleSpec> out = new ArrayList<>();
        for (int i = 0; i < list.size(); i++) {
            out.add(spec(KEY + "[" + i + "]", (Map<?, ?>) list.get(i)));
        }
        return out;
    }

    /** A stable text of the list, to tell whether the setting changed since it was applied. */
    public static String key(List<ScheduleSpec> specs) {
        StringBuilder b = new StringBuilder();
        for (ScheduleSpec s : specs) {
            b.append(s.role()).append('\0').append(s.every().toMillis()).append('\0').append(s.at()).append('\0')
                    .append(s.keep()).append('\0').append(s.pre()).append('\0').append(s.post()).append('\n');
        }
        if (b.length() == 0) {
            return "";
        }
        try {
            return java.util.HexFormat.of().formatHex(java.security.MessageDigest.getInstance("SHA-256")
                    .digest(b.toString().getBytes(java.nio.charset.StandardCharsets.UTF_8)));
        } catch (java.security.NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    private static ScheduleSpec spec(String prefix, Map<?, ?> raw) {
        Map<String, Object> f = new LinkedHashMap<>();
        raw.forEach((k, v) -> f.put(SettingsCatalog.normalise(String.valueOf(k)), v));
        for (String k : f.keySet()) {
            if (!FIELDS.contains(k)) {
                throw new IllegalArgumentException("unknown field '" + k + "'; a schedule has role, every, at, keep, pre, post");
            }
        }
        if (!f.containsKey("role") || !f.containsKey("every")) {
            throw new IllegalArgumentException("role and every are required (e.g. {role: data, every: 24h})");
        }
        Object at = f.get("at");
        if (at instanceof Number) {
            // YAML 1.1 reads an unquoted 3:00 as the number 180.
            throw new IllegalArgumentException("at must be quoted, e.g. at: \"03:00\"");
        }
        Duration every;
        try {
            every = SettingsCatalog.parseDuration(text(f.get("every")));
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("every: " + e.getMessage());
        }
        int keep;
        try {
            keep = f.containsKey("keep") ? Integer.parseInt(text(f.get("keep"))) : 0;
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("keep '" + f.get("keep") + "' is not a whole number");
        }
        // Commands as written: white space at their ends may matter to the shell.
        return new ScheduleSpec(text(f.get("role")), every, text(at), keep, raw(f.get("pre")), raw(f.get("post"))).validate();
    }

    private static String raw(Object v) {
        return v == null ? "" : String.valueOf(v);
    }

    private static String text(Object v) {
        return v == null ? "" : String.valueOf(v).strip();
    }
}
