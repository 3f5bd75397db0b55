package dev.kiln.controller.fleet;

import dev.kiln.controller.ExitCodes;
import dev.kiln.controller.KilnException;
import dev.kiln.time.Durations;

import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * A launch template's {@code schedule} (config.yml), checked here and handed to the agent as
 * {@code kiln.schedules}: snapshot schedules the instance runs from its first boot.
 *
 * <pre>
 * templates:
 *   notes:
 *     volume: [data:20]
 *     schedule:
 *       - {role: data, every: 24h, at: "03:00", keep: 7, pre: "sqlite3 /mnt/data/app.db 'PRAGMA wal_checkpoint(TRUNCATE)'"}
 * </pre>
 */
public final class LaunchSchedules {

    private static final Set<String> FIELDS = Set.of("role", "every", "at", "keep", "pre", "post");

    private LaunchSchedules() {
    }

    /**
     * The template's schedules as the agent's {@code kiln.schedules} list.
     *
     * @param template the template's name, for messages
     * @param value    the {@code schedule} value: one map or a list of maps; null for none
     * @throws KilnException CONFIG naming the template, the entry and the field
     */
    public static List<Map<String, Object>> of(String template, Object value) {
        if (value == null) {
            return List.of();
        }
        List<?> list = value instanceof List<?> l ? l : List.of(value);
        List<Map<String, Object>> out = new ArrayList<>();
        for (int i = 0; i < list.size(); i++) {
            String where = "template '" + template + "': schedule[" + i + "]";
            if (!(list.get(i) instanceof Map<?, ?> m)) {
                throw problem(where + " must be a map such as {role: data, every: 24h, keep: 7}");
            }
            Map<String, Object> s = new LinkedHashMap<>();
            m.forEach((k, v) -> s.put(String.valueOf(k), v));
            for (String k : s.keySet()) {
                if (!FIELDS.contains(k)) {
                    throw problem(where + " has an unknown field '" + k + "' (a schedule has role, every, at, keep, pre, post)");
                }
            }
            if (!(s.get("role") instanceof String role) || role.isBlank()) {
                throw problem(where + " needs a role, e.g. role: data");
            }
            Duration every;
            try {
                every = Durations.parse(String.valueOf(s.get("every")));
            } catch (IllegalArgumentException e) {
                throw problem(where + ": every '" + s.get("every") + "' is not a duration (e.g. 24h)");
            }
            if (every.compareTo(Duration.ofSeconds(1)) < 0) {
                throw problem(where + ": every must be at least 1s (e.g. 24h)");
            }
            Object at = s.get("at");
            if (at != null && !(at instanceof String a && a.matches("([01][0-9]|2[0-3]):[0-5][0-9]"))) {
                throw problem(where + ": at must be a quoted time of day HH:MM in UTC, e.g. at: \"03:00\"");
            }
            Object keep = s.get("keep");
            if (keep != null && !(keep instanceof Integer k && k >= 0)) {
                throw problem(where + ": keep must be a whole number, 0 (keep all) or more");
            }
            Map<String, Object> agent = new LinkedHashMap<>();
            agent.put("role", role);
            agent.put("every", every.toSeconds() + "s");
            if (at != null) {
                agent.put("at", at);
            }
            agent.put("keep", keep == null ? 0 : keep);
            for (String c : List.of("pre", "post")) {
                if (s.get(c) != null) {
                    agent.put(c, String.valueOf(s.get(c)));
                }
            }
            out.add(agent);
        }
        return out;
    }

    private static KilnException problem(String message) {
        return new KilnException(ExitCodes.CONFIG, message);
    }
}
