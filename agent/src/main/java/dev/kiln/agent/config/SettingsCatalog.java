package dev.kiln.agent.config;

import dev.kiln.time.Durations;

import java.net.URI;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.function.Consumer;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Every setting kiln-agent knows, with a check of its value. Start-up validates each source of
 * settings (the config file, user data, {@code KILN_*} environment variables) against it, so a
 * typo or a bad value stops the agent with a message that names the key, instead of being
 * silently ignored.
 */
public final class SettingsCatalog {

    /** One known setting: its key, what it accepts, and a check that throws with the reason. */
    public record Setting(String key, String accepts, Consumer<String> check) {
        /** The environment variable that overrides it, e.g. {@code KILN_GRPC_PORT}. */
        public String envName() {
            return key.toUpperCase(Locale.ROOT).replace('.', '_').replace('-', '_');
        }
    }


    private static final List<Setting> SETTINGS = List.of(
            new Setting("kiln.mode", "'local' or 'ec2'", AgentMode::parse),
            new Setting("kiln.state-dir", "an absolute path", SettingsCatalog::absolutePath),
            new Setting("kiln.name", "a display name", v -> { }),
            new Setting("kiln.instance-id", "an instance id such as local-1a2b3c4d", SettingsCatalog::nonEmpty),
            new Setting("kiln.grpc.host", "a bind address such as 127.0.0.1 or 0.0.0.0", SettingsCatalog::nonEmpty),
            new Setting("kiln.grpc.port", "a TCP port 0-65535", SettingsCatalog::port),
            new Setting("kiln.tls.cert", "a PEM file path or PEM text", SettingsCatalog::nonEmpty),
            new Setting("kiln.tls.key", "a PEM file path or PEM text", SettingsCatalog::nonEmpty),
            new Setting("kiln.tls.ca", "a PEM file path or PEM text", SettingsCatalog::nonEmpty),
            new Setting("kiln.imds.endpoint", "an http:// URL", SettingsCatalog::httpUrl),
            new Setting("kiln.imds.timeout", "a duration such as 30s, 5m or PT30S", SettingsCatalog::duration),
            new Setting("kiln.builds.user", "an unprivileged user name", SettingsCatalog::nonEmpty),
            new Setting("kiln.builds.profiles-dir", "an absolute path", SettingsCatalog::absolutePath),
            new Setting("kiln.builds.cancel-grace", "a duration such as 10s", SettingsCatalog::duration),
            new Setting("kiln.lease.ttl", "a positive duration such as 2h", SettingsCatalog::duration),
            new Setting("kiln.lease.max-lifetime", "a positive duration such as 12h", SettingsCatalog::positiveDuration),
            new Setting("kiln.lease.forever", "true or false", SettingsCatalog::bool),
            new Setting("kiln.lease.fallback-ttl", "a positive duration such as 30m", SettingsCatalog::positiveDuration),
            new Setting("kiln.lease.idle-timeout", "a positive duration such as 30m", SettingsCatalog::positiveDuration),
            new Setting("kiln.lease.rebalance", "'warn' or 'drain'", v -> oneOf(v, "warn", "drain")),
            new Setting("kiln.lease.drain-budget", "a positive duration such as 100s", SettingsCatalog::positiveDuration),
            new Setting("kiln.lease.backstop", "'systemd', 'command' or 'none'", v -> oneOf(v, "systemd", "command", "none")),
            new Setting("kiln.lease.backstop-command", "an absolute path of a program", SettingsCatalog::absolutePath),
            new Setting("kiln.lease.backstop-grace", "a positive duration such as 10m", SettingsCatalog::positiveDuration),
            new Setting("kiln.lease.power-off", "'systemd' or 'exit'", v -> oneOf(v, "systemd", "exit")),
            new Setting("kiln.lease.imds-poll", "a positive duration such as 5s", SettingsCatalog::positiveDuration),
            new Setting("kiln.volumes.sysfs-root", "an absolute path", SettingsCatalog::absolutePath),
            new Setting("kiln.volumes.dev-root", "an absolute path", SettingsCatalog::absolutePath),
            new Setting("kiln.volumes.attach-timeout", "a duration such as 2m", SettingsCatalog::duration),
            new Setting("kiln.volumes.unmount-grace", "a duration such as 10s", SettingsCatalog::duration),
            new Setting("kiln.volumes.freeze-lease", "a duration such as 30s", SettingsCatalog::positiveDuration),
            new Setting("kiln.volumes.freeze-max-lease", "a duration such as 5m", SettingsCatalog::positiveDuration),
            new Setting("kiln.volumes.zero-read-timeout", "a duration such as 1h (0s: never read a whole device)",
                    SettingsCatalog::nonNegativeDuration),
            new Setting(VolumeMountSettings.KEY, "a list of mounts in agent.yml or user data", v -> {
                throw new IllegalArgumentException("a single value; boot mounts are a list, set in agent.yml or user data");
            }),
            new Setting("kiln.ssh.enabled", "true or false", SettingsCatalog::bool),
            new Setting("kiln.ssh.host", "a bind address such as 127.0.0.1 or 0.0.0.0", SettingsCatalog::nonEmpty),
            new Setting("kiln.ssh.port", "a TCP port 0-65535", SettingsCatalog::port),
            new Setting("kiln.ssh.host-key", "an absolute path", SettingsCatalog::absolutePath),
            new Setting("kiln.ssh.outputs", "an absolute path", SettingsCatalog::absolutePath),
            new Setting("kiln.ssh.sources", "an absolute path", SettingsCatalog::absolutePath),
            new Setting("kiln.ssh.owner-keys", "an authorized_keys file path or its text", SettingsCatalog::keys),
            new Setting("kiln.ssh.reader-keys", "an authorized_keys file path or its text", SettingsCatalog::keys),
            new Setting("kiln.ssh.user", "an unprivileged user name", SettingsCatalog::nonEmpty),
            new Setting(LabelSettings.KEY, "a map of labels in agent.yml or user data", v -> {
                throw new IllegalArgumentException("a single value; labels are a map, set in agent.yml or user data");
            }),
            new Setting("kiln.boot-script", "a shell script's text", v -> {
                if (v.isBlank()) {
                    throw new IllegalArgumentException("empty (leave kiln.boot-script out for no boot script)");
                }
            }),
            new Setting(ServiceSettings.KEY, "a list of services in agent.yml or user data", v -> {
                throw new IllegalArgumentException("a single value; services are a list, set in agent.yml or user data");
            }),
            new Setting(SshSettings.FORWARD_PORTS, "a list of TCP ports 1-65535 such as [7888, 8888]",
                    SettingsCatalog::forwardPorts),
            new Setting(ScheduleSettings.KEY, "a list of snapshot schedules in agent.yml or user data", v -> {
                throw new IllegalArgumentException("a single value; schedules are a list, set in agent.yml or user data");
            }),
            new Setting("kiln.snapshots.store", "an absolute path", SettingsCatalog::absolutePath),
            new Setting("kiln.snapshots.ec2-endpoint", "an http:// URL", SettingsCatalog::httpUrl),
            new Setting("kiln.snapshots.freeze-lease", "a positive duration such as 30s", SettingsCatalog::positiveDuration),
            new Setting("kiln.snapshots.catch-up", "a duration such as 1m", SettingsCatalog::nonNegativeDuration),
            new Setting("kiln.snapshots.retry-backoff", "a positive duration such as 1m", SettingsCatalog::positiveDuration),
            new Setting("kiln.snapshots.command-timeout", "a positive duration such as 5m", SettingsCatalog::positiveDuration));

    /** Flattened keys of one schedule's field, e.g. kiln.schedules[0].every. */
    private static final Pattern INDEXED_SCHEDULE = Pattern.compile(Pattern.quote(ScheduleSettings.KEY)
            + "\\[(\\d+)\\]\\.([A-Za-z-]+)");

    /** Settings that hold a list of single values, each checked on its own (a string is a comma-separated list). */
    private static final Set<String> LISTS = Set.of(SshSettings.FORWARD_PORTS);

    /** One element of such a list as a flattened key, e.g. kiln.ssh.forward-ports[1]. */
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
            if (element.matches() && LISTS.contains(element.group(1))) {
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
        if (value instanceof List<?> list && LISTS.contains(setting.key())) {
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

    private static void nonEmpty(String v) {
        if (v.isBlank()) {
            throw new IllegalArgumentException("empty");
        }
    }

    private static void absolutePath(String v) {
        nonEmpty(v);
        if (!Path.of(v).isAbsolute()) {
            throw new IllegalArgumentException("'" + v + "' is not an absolute path");
        }
    }

    private static void port(String v) {
        int port;
        try {
            port = Integer.parseInt(v.trim());
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("'" + v + "' is not a number");
        }
        if (port < 0 || port > 65535) {
            throw new IllegalArgumentException(port + " is out of range");
        }
    }

    /** One port the owner may forward to, or several separated by commas (an environment variable). */
    private static void forwardPorts(String v) {
        for (String part : v.split(",", -1)) {
            int port;
            try {
                port = Integer.parseInt(part.trim());
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("'" + part.trim() + "' is not a port number");
            }
            if (port < 1 || port > 65535) {
                throw new IllegalArgumentException(port + " is not a TCP port 1-65535");
            }
        }
    }

    private static void httpUrl(String v) {
        try {
            URI uri = URI.create(v.trim());
            if (!"http".equals(uri.getScheme()) && !"https".equals(uri.getScheme()) || uri.getHost() == null) {
                throw new IllegalArgumentException("'" + v + "' is not an http(s) URL");
            }
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("'" + v + "' is not an http(s) URL");
        }
    }

    private static void bool(String v) {
        if (!v.trim().equalsIgnoreCase("true") && !v.trim().equalsIgnoreCase("false")) {
            throw new IllegalArgumentException("'" + v + "' is not true or false");
        }
    }

    private static void keys(String v) {
        nonEmpty(v);
        String t = v.strip();
        if (!t.contains("\n") && !t.contains(" ") && !Path.of(t).isAbsolute()) {
            throw new IllegalArgumentException("'" + v + "' is neither an absolute path nor authorized_keys text");
        }
    }

    private static void duration(String v) {
        parseDuration(v);
    }

    private static void nonNegativeDuration(String v) {
        if (parseDuration(v).isNegative()) {
            throw new IllegalArgumentException("'" + v + "' is negative");
        }
    }

    private static void positiveDuration(String v) {
        if (parseDuration(v).isNegative() || parseDuration(v).isZero()) {
            throw new IllegalArgumentException("'" + v + "' is not a positive duration");
        }
    }

    /** Whether {@code v} is a duration (as {@link #parseDuration} reads it) longer than zero. */
    public static boolean isPositiveDuration(String v) {
        try {
            positiveDuration(v);
            return true;
        } catch (IllegalArgumentException e) {
            return false;
        }
    }

    private static void oneOf(String v, String... allowed) {
        if (!java.util.Arrays.asList(allowed).contains(v.trim())) {
            throw new IllegalArgumentException("'" + v + "' is not one of " + String.join(", ", allowed));
        }
    }
}
