package dev.kiln.agent.config;

import io.micronaut.context.annotation.ConfigurationProperties;
import io.micronaut.core.annotation.Nullable;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.regex.Pattern;

/**
 * The build an instance runs once per boot, after its boot mounts ({@code kiln.boot-build}, in
 * agent.yml or, as {@code kiln launch} writes it, in user data):
 *
 * <pre>
 * kiln:
 *   boot-build:
 *     work-tree: /mnt/builds/vibes        # required; absolute
 *     profiles: [flac, opus]              # tup profiles; empty or absent: all
 *     profiles-dir: /mnt/sources/profiles # NAME.config files sent as profile definitions
 *     command: ["make", "all"]            # a command in place of tup (argv, no shell)
 *     labels: {trigger: boot}
 * </pre>
 *
 * @param workTree    the work tree; no boot build when null
 * @param profiles    tup profiles to build (empty: all)
 * @param profilesDir a directory of NAME.config files, like {@code kiln build --profiles-dir}
 * @param command     a command build's argv, run in place of tup
 * @param labels      labels of the build record (the agent adds {@code kiln:boot=true})
 */
@ConfigurationProperties(BootBuildSettings.PREFIX)
public record BootBuildSettings(
        @Nullable String workTree,
        @Nullable List<String> profiles,
        @Nullable String profilesDir,
        @Nullable List<String> command,
        @Nullable Map<String, String> labels) {

    /** The settings' prefix. */
    public static final String PREFIX = "kiln.boot-build";

    private static final List<String> FIELDS = List.of("work-tree", "profiles", "profiles-dir", "command", "labels");
    private static final Pattern PROFILE = Pattern.compile("[A-Za-z0-9][A-Za-z0-9_.-]{0,63}");
    private static final Pattern LABEL_KEY = Pattern.compile("[A-Za-z0-9][A-Za-z0-9_.:/-]{0,127}");

    /** Whether a boot build is configured. */
    public boolean present() {
        return workTree != null && !workTree.isBlank();
    }

    /**
     * Problems with the {@code kiln.boot-build} keys of one settings source, each naming the key.
     *
     * @param source   where they came from, e.g. "EC2 user data"
     * @param settings every flattened key of that source (others are ignored)
     */
    public static List<String> problems(String source, Map<String, ?> settings) {
        List<String> problems = new ArrayList<>();
        boolean any = false;
        boolean workTree = false;
        boolean command = false;
        boolean profiles = false;
        for (Map.Entry<String, ?> e : settings.entrySet()) {
            String key = SettingsCatalog.normalise(e.getKey());
            if (!key.equals(PREFIX) && !key.startsWith(PREFIX + ".") && !key.startsWith(PREFIX + "[")) {
                continue;
            }
            any = true;
            Object value = e.getValue();
            String rest = key.equals(PREFIX) ? "" : key.substring(PREFIX.length() + 1);
            String field = fieldOf(rest);
            if (rest.isEmpty()) {
                problems.add("setting '" + e.getKey() + "' in " + source + " must be a map with " + String.join(", ", FIELDS)
                        + " (work-tree required)");
                return problems;
            }
            Optional<String> problem = switch (field) {
                case "work-tree" -> {
                    workTree = true;
                    yield single(source, key, value, "an absolute path such as /mnt/builds/vibes")
                            .or(() -> absolute(source, key, value));
                }
                case "profiles-dir" -> single(source, key, value, "an absolute path")
                        .or(() -> absolute(source, key, value));
                case "profiles" -> {
                    profiles = true;
                    yield eachOf(source, key, value, "a list of profile names such as [flac, opus]", p ->
                            PROFILE.matcher(p).matches() ? null : "profile name '" + p
                                    + "' must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit");
                }
                case "command" -> {
                    command = true;
                    yield value == null || value instanceof List<?> l && l.isEmpty()
                            ? Optional.of("setting '" + key + "' in " + source + " is empty (expected an argv list such as"
                            + " [\"make\", \"all\"], or no command for a tup build)")
                            : eachOf(source, key, value, "an argv list such as [\"make\", \"all\"]",
                            a -> a.isEmpty() ? "an empty argument" : null);
                }
                case "labels" -> label(source, key, e.getKey().contains(".labels.")
                        ? "labels." + e.getKey().substring(e.getKey().indexOf(".labels.") + 8) : rest, value);
                default -> Optional.of("unknown setting '" + e.getKey() + "' in " + source + "; " + PREFIX + " has "
                        + String.join(", ", FIELDS));
            };
            problem.ifPresent(problems::add);
        }
        if (any && !workTree) {
            problems.add("setting '" + PREFIX + ".work-tree' in " + source + " is missing: a boot build needs its work"
                    + " tree (an absolute path such as /mnt/builds/vibes)");
        }
        if (command && profiles) {
            problems.add("settings '" + PREFIX + ".command' and '" + PREFIX + ".profiles' in " + source
                    + " contradict each other: profiles are for a tup build, command replaces tup; set one");
        }
        return problems;
    }

    private static String fieldOf(String rest) {
        int end = rest.length();
        for (char c : new char[]{'.', '['}) {
            int i = rest.indexOf(c);
            if (i >= 0 && i < end) {
                end = i;
            }
        }
        return rest.substring(0, end);
    }

    private static Optional<String> label(String source, String key, String rest, Object value) {
        if (rest.equals("labels")) {
            return value instanceof Map<?, ?> m && m.isEmpty() ? Optional.empty()
                    : Optional.of("setting '" + key + "' in " + source + " must be a map of labels such as {trigger: boot}");
        }
        String name = rest.startsWith("labels.") ? rest.substring("labels.".length()) : "";
        if (!LABEL_KEY.matcher(name).matches()) {
            return Optional.of("setting '" + key + "' in " + source + ": '" + name + "' is not a label name (letters,"
                    + " digits, '.', '_', ':', '/', '-')");
        }
        if (name.startsWith("kiln:")) {
            return Optional.of("setting '" + key + "' in " + source + ": labels starting with kiln: are the agent's own");
        }
        return single(source, key, value, "a label value");
    }

    private static Optional<String> single(String source, String key, Object value, String accepts) {
        if (value instanceof Map<?, ?> || value instanceof List<?>) {
            return Optional.of("setting '" + key + "' in " + source + " must be a single value (" + accepts + ")");
        }
        return Optional.empty();
    }

    private static Optional<String> absolute(String source, String key, Object value) {
        String v = value == null ? "" : String.valueOf(value).strip();
        if (v.isEmpty() || !Path.of(v).isAbsolute() || Path.of(v).normalize().equals(Path.of("/"))) {
            return Optional.of("invalid value for setting '" + key + "' in " + source + ": '" + v
                    + "' is not an absolute path other than / (expected an absolute path)");
        }
        return Optional.empty();
    }

    /** A list (or, for flattened sources, one indexed element) whose items each pass {@code check}. */
    private static Optional<String> eachOf(String source, String key, Object value, String accepts,
                                           java.util.function.Function<String, String> check) {
        List<?> items = value instanceof List<?> l ? l : key.endsWith("]") ? List.of(String.valueOf(value)) : null;
        if (items == null) {
            return Optional.of("setting '" + key + "' in " + source + " must be a list (" + accepts + ")");
        }
        for (Object item : items) {
            if (item instanceof Map<?, ?> || item instanceof List<?>) {
                return Optional.of("setting '" + key + "' in " + source + " must be a list of single values (" + accepts + ")");
            }
            String problem = check.apply(item == null ? "" : String.valueOf(item));
            if (problem != null) {
                return Optional.of("invalid value for setting '" + key + "' in " + source + ": " + problem
                        + " (expected " + accepts + ")");
            }
        }
        return Optional.empty();
    }
}
