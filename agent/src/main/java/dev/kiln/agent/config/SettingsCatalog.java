package dev.kiln.agent.config;

import dev.kiln.time.Durations;

import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.function.Consumer;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Every setting kiln-agent knows, with a check of its value. Start-up validates each source of
 * settings (the config file, user data, {@code KILN_*} environment variables) against it, so a
 * typo or a bad value stops the agent with a message that names the key and the source.
 *
 * <p>The keys are the components of the {@code @ConfigurationProperties} records, each value
 * checked by its record's own rules ({@link SettingRules}), which the record's constructor
 * applies too; the list and map settings (boot mounts, labels, services, schedules, the boot
 * build) are checked by their own classes.
 */
public final class SettingsCatalog {

    /**
     * One known setting: its key, what it accepts, a check that throws with the reason, and
     * whether it is a list of single values (each checked; a string is a comma-separated list).
     */
    public record Setting(String key, String accepts, Consumer<String> check, boolean list) {
        public Setting(String key, String accepts, Consumer<String> check) {
            this(key, accepts, check, false);
        }

        /** The environment variable that overrides it, e.g. {@code KILN_GRPC_PORT}. */
        public String envName() {
            return key.toUpperCase(Locale.ROOT).replace('.', '_').replace('-', '_');
        }
    }

    /**
     * The settings records' rules, each record a {@code @ConfigurationProperties} prefix whose
     * components are settings (in this order in messages). {@link BootBuildSettings} is a section
     * of its own.
     */
    private static final List<SettingRules> RECORDS = List.of(AgentSettings.RULES, GrpcSettings.RULES,
            TlsSettings.RULES, ImdsSettings.RULES, BuildSettings.RULES, LeaseSettings.RULES, VolumeSettings.RULES,
            SshSettings.RULES, SnapshotSettings.RULES);

    /** Settings that hold a list or map, checked by their own classes; a single value is refused here. */
    private static final List<Setting> COMPOUND = List.of(
            compound(VolumeMountSettings.KEY, "a list of mounts in agent.yml or user data", "boot mounts are a list"),
            compound(LabelSettings.KEY, "a map of labels in agent.yml or user data", "labels are a map"),
            compound(ServiceSettings.KEY, "a list of services in agent.yml or user data", "services are a list"),
            compound(ScheduleSettings.KEY, "a list of snapshot schedules in agent.yml or user data",
                    "schedules are a list"));

    private static final List<Setting> SETTINGS = settings();

    /** Flattened keys of one schedule's field, e.g. kiln.schedules[0].every. */
    private static final Pattern INDEXED_SCHEDULE = Pattern.compile(Pattern.quote(ScheduleSettings.KEY)
            + "\\[(\\d+)\\]\\.([A-Za-z-]+)");

    /** One element of a list setting as a flattened key, e.g. kiln.ssh.forward-ports[1]. */
    private static final Pattern INDEXED_ELEMENT = Pattern.compile("(.+)\\[(\\d+)\\]");

    /** Flattened keys of one boot mount's field, e.g. kiln.volumes.mounts[2].mount-point. */
    private static final Pattern INDEXED_MOUNT = Pattern.compile(Pattern.quote(VolumeMountSettings.KEY)
            + "\\[(\\d+)\\]\\.([A-Za-z-]+)");

    private SettingsCatalog() {
    }

    /** All known settings. */
    public static List<Setting> all() {
        return SETTINGS;
    }

    /** The setting with this key (camelCase segments are accepted as kebab-case). */
    public static Optional<Setting> find(String key) {
        String normal = normalise(key);
        return SETTINGS.stream().filter(s -> s.key().equals(normal)).findFirst();
    }

    /**
     * Checks the settings one source provides.
     *
     * @param source   a name for the source the user recognises, e.g. the file path
     * @param settings flattened keys ({@code kiln.grpc.port}) to values
     * @return problems, each naming the key and what is wrong; empty when all is well
     */
    public static List<String> problems(String source, Map<String, ?> settings) {
        List<String> problems = new ArrayList<>();
        settings.forEach((key, value) -> {
            if (!key.startsWith("kiln.") && !key.equals("kiln")) {
                return; // micronaut.*, grpc.*, logger.*: Micronaut's own namespace
            }
            String normal = normalise(key);
            if (normal.equals(BootBuildSettings.PREFIX) || normal.startsWith(BootBuildSettings.PREFIX + ".")
                    || normal.startsWith(BootBuildSettings.PREFIX + "[")) {
                return; // checked together below: one field needs another (work-tree), two exclude each other
            }
            if (LabelSettings.owns(normal) || ServiceSettings.owns(normal)) {
                return; // checked together below: label names must not collide, nor services' names and ports
            }
            if (normal.equals(VolumeMountSettings.KEY)) {
                problems.addAll(VolumeMountSettings.problems(source, value));
                return;
            }
            if (normal.equals(ScheduleSettings.KEY)) {
                problems.addAll(ScheduleSettings.problems(source, value));
                return;
            }
            Matcher schedule = INDEXED_SCHEDULE.matcher(normal);
            if (schedule.matches()) {
                ScheduleSettings.fieldProblem(source, normal, schedule.group(2)).ifPresent(problems::add);
                return;
            }
            Matcher indexed = INDEXED_MOUNT.matcher(normal);
            if (indexed.matches()) {
                VolumeMountSettings.fieldProblem(source, normal, indexed.group(2), value).ifPresent(problems::add);
                return;
            }
            Matcher element = INDEXED_ELEMENT.matcher(normal);
            if (element.matches() && find(element.group(1)).filter(Setting::list).isPresent()) {
                checkValue(source, find(element.group(1)).orElseThrow(), key, value).ifPresent(problems::add);
                return;
            }
            Optional<Setting> setting = find(key);
            if (setting.isEmpty()) {
                List<String> fields = fieldsOf(normal);
                if (!fields.isEmpty() && value instanceof Map<?, ?>) {
                    return; // a section as a whole, next to its own keys; an empty one sets nothing
                }
                // A section (kiln, kiln.grpc, ...) with a single value or a list in place of its map.
                problems.add(fields.isEmpty() ? "unknown setting '" + key + "' in " + source + suggestion(key)
                        : "setting '" + key + "' in " + source + " must be a map (of " + String.join(", ", fields)
                        + "), not " + describe(value));
                return;
            }
            checkValue(source, setting.get(), key, value).ifPresent(problems::add);
        });
        problems.addAll(BootBuildSettings.problems(source, settings));
        problems.addAll(LabelSettings.problems(source, settings));
        problems.addAll(ServiceSettings.problems(source, settings));
        return problems;
    }

    /**
     * Checks {@code KILN_*} environment variables: each must name a known setting.
     *
     * @param env the process environment
     * @return problems, each naming the variable
     */
    public static List<String> environmentProblems(Map<String, String> env) {
        List<String> problems = new ArrayList<>();
        env.forEach((name, value) -> {
            if (!name.startsWith("KILN_")) {
                return;
            }
            Optional<Setting> setting = SETTINGS.stream().filter(s -> s.envName().equals(name)).findFirst();
            if (setting.isEmpty()) {
                problems.add("unknown setting in environment variable " + name
                        + " (known: " + String.join(", ", SETTINGS.stream().map(Setting::envName).toList()) + ")");
                return;
            }
            checkValue("environment variable " + name, setting.get(), setting.get().key(), value)
                    .ifPresent(problems::add);
        });
        return problems;
    }

    /** The names one level below a section, e.g. host and port for kiln.grpc; empty when it is no section. */
    private static List<String> fieldsOf(String section) {
        List<String> names = new ArrayList<>();
        java.util.stream.Stream.concat(SETTINGS.stream().map(Setting::key),
                        java.util.stream.Stream.of(BootBuildSettings.PREFIX + ".work-tree"))
                .filter(k -> k.startsWith(section + "."))
                .map(k -> k.substring(section.length() + 1).split("\\.")[0])
                .filter(n -> !names.contains(n))
                .forEach(names::add);
        return names;
    }

    private static String describe(Object value) {
        if (value instanceof List<?>) {
            return "a list";
        }
        return value == null ? "empty" : "'" + value + "'";
    }

    /** Flattens nested YAML maps into dotted keys. */
    public static Map<String, Object> flatten(Map<?, ?> nested) {
        Map<String, Object> flat = new LinkedHashMap<>();
        flatten("", nested, flat);
        return flat;
    }

    private static void flatten(String prefix, Map<?, ?> nested, Map<String, Object> flat) {
        nested.forEach((k, v) -> {
            String key = prefix.isEmpty() ? String.valueOf(k) : prefix + "." + k;
            if (v instanceof Map<?, ?> map) {
                flatten(key, map, flat);
            } else {
                flat.put(key, v);
            }
        });
    }

    /** Parses a duration the way settings are written ({@link Durations}: 30s, 1h30m, 2d, ISO-8601). */
    public static Duration parseDuration(String value) {
        return Durations.parse(value);
    }

    private static Optional<String> checkValue(String source, Setting setting, String key, Object value) {
        if (value instanceof List<?> list && setting.list()) {
            for (Object element : list) {
                Optional<String> problem = element instanceof Map<?, ?> || element instanceof List<?>
                        ? Optional.of("setting '" + key + "' in " + source + " must be a list of single values ("
                        + setting.accepts() + ")")
                        : checkValue(source, setting, key, element);
                if (problem.isPresent()) {
                    return problem;
                }
            }
            return Optional.empty();
        }
        if (value instanceof Map<?, ?> || value instanceof List<?>) {
            return Optional.of("setting '" + key + "' in " + source + " must be a single value (" + setting.accepts() + ")");
        }
        try {
            setting.check().accept(value == null ? "" : String.valueOf(value));
            return Optional.empty();
        } catch (IllegalArgumentException e) {
            return Optional.of("invalid value for setting '" + key + "' in " + source + ": " + e.getMessage()
                    + " (expected " + setting.accepts() + ")");
        }
    }

    private static String suggestion(String key) {
        String normal = normalise(key);
        Setting best = null;
        int bestDistance = Integer.MAX_VALUE;
        for (Setting s : SETTINGS) {
            int d = distance(normal, s.key());
            if (d < bestDistance) {
                bestDistance = d;
                best = s;
            }
        }
        if (best != null && bestDistance <= 3) {
            return "; did you mean '" + best.key() + "'?";
        }
        return "; known settings: " + String.join(", ", SETTINGS.stream().map(Setting::key).toList());
    }

    static String normalise(String key) {
        StringBuilder b = new StringBuilder();
        for (char c : key.toCharArray()) {
            if (Character.isUpperCase(c)) {
                b.append('-').append(Character.toLowerCase(c));
            } else {
                b.append(c);
            }
        }
        return b.toString();
    }

    private static int distance(String a, String b) {
        int[] prev = new int[b.length() + 1];
        int[] cur = new int[b.length() + 1];
        for (int j = 0; j <= b.length(); j++) {
            prev[j] = j;
        }
        for (int i = 1; i <= a.length(); i++) {
            cur[0] = i;
            for (int j = 1; j <= b.length(); j++) {
                int cost = a.charAt(i - 1) == b.charAt(j - 1) ? 0 : 1;
                cur[j] = Math.min(Math.min(cur[j - 1] + 1, prev[j] + 1), prev[j - 1] + cost);
            }
            int[] t = prev;
            prev = cur;
            cur = t;
        }
        return prev[b.length()];
    }

    /** Whether {@code v} is a duration (as {@link #parseDuration} reads it) longer than zero. */
    public static boolean isPositiveDuration(String v) {
        try {
            Duration d = parseDuration(v);
            return !d.isNegative() && !d.isZero();
        } catch (IllegalArgumentException e) {
            return false;
        }
    }

    private static Setting compound(String key, String accepts, String what) {
        return new Setting(key, accepts, v -> {
            throw new IllegalArgumentException("a single value; " + what + ", set in agent.yml or user data");
        });
    }

    /** Every component of the settings records, in order, then the compound settings. */
    private static List<Setting> settings() {
        List<Setting> all = new ArrayList<>();
        for (SettingRules record : RECORDS) {
            all.addAll(record.settings());
        }
        all.addAll(COMPOUND);
        return List.copyOf(all);
    }
}
