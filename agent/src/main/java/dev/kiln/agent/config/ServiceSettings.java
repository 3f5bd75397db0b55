package dev.kiln.agent.config;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * One long-lived service from {@code kiln.services} (a YAML list in agent.yml or user data):
 *
 * <pre>
 * kiln:
 *   services:
 *     - name: web                             # [a-z0-9][a-z0-9-]{0,30}, unique
 *       port: 8000                            # 1-65535, unique
 *       path: /                               # the link's path, default /
 *       command: python3 -m http.server 8000  # /bin/sh -c, as the build user; absent: declared only
 *       keeps-alive: false                    # busy for the idle timeout while it runs
 * </pre>
 *
 * @param name      the service's name
 * @param port      its TCP port on the instance
 * @param path      the path of its link
 * @param command   the shell command, or null for an endpoint something else serves
 * @param keepsAlive whether it counts as busy for the idle timeout while it runs
 */
public record ServiceSettings(String name, int port, String path, String command, boolean keepsAlive) {

    /** The setting that holds the list. */
    public static final String KEY = "kiln.services";

    private static final Pattern NAME = Pattern.compile("[a-z0-9][a-z0-9-]{0,30}");
    private static final Pattern INDEXED = Pattern.compile(Pattern.quote(KEY) + "\\[(\\d+)\\](?:\\.([A-Za-z-]+))?");
    private static final List<String> FIELDS = List.of("name", "port", "path", "command", "keeps-alive");

    /** Whether a flattened key belongs to the services. */
    public static boolean owns(String normalKey) {
        return normalKey.equals(KEY) || normalKey.startsWith(KEY + ".") || normalKey.startsWith(KEY + "[");
    }

    /**
     * Problems with the {@code kiln.services} keys of one source, each naming the indexed key
     * ({@code kiln.services[1].port}).
     *
     * @param settings every flattened key of that source (others are ignored)
     */
    public static List<String> problems(String source, Map<String, ?> settings) {
        List<String> problems = new ArrayList<>();
        for (Map.Entry<String, ?> e : settings.entrySet()) {
            String key = SettingsCatalog.normalise(e.getKey());
            if (!owns(key)) {
                continue;
            }
            if (key.equals(KEY)) {
                problems.addAll(listProblems(source, e.getValue()));
                continue;
            }
            Matcher indexed = INDEXED.matcher(key);
            if (indexed.matches() && indexed.group(2) != null) {
                fieldProblem(source, key, indexed.group(2), e.getValue()).ifPresent(problems::add);
            } else {
                problems.add("setting '" + e.getKey() + "' in " + source + " must be a list of services, each with "
                        + String.join(", ", FIELDS) + " (name and port required)");
            }
        }
        return problems;
    }

    private static List<String> listProblems(String source, Object value) {
        List<String> problems = new ArrayList<>();
        if (!(value instanceof List<?> list)) {
            problems.add("setting '" + KEY + "' in " + source + " must be a list of services, each with "
                    + String.join(", ", FIELDS) + " (name and port required)");
            return problems;
        }
        Map<String, Integer> names = new HashMap<>();
        Map<String, String> ports = new HashMap<>();
        for (int i = 0; i < list.size(); i++) {
            String prefix = KEY + "[" + i + "]";
            if (!(list.get(i) instanceof Map<?, ?> m)) {
                problems.add("setting '" + prefix + "' in " + source + " must be a map with " + String.join(", ", FIELDS)
                        + " (name and port required)");
                continue;
            }
            Map<String, Object> fields = normalised(m);
            List<String> own = new ArrayList<>();
            fields.forEach((k, v) -> fieldProblem(source, prefix + "." + k, k, v).ifPresent(own::add));
            for (String required : List.of("name", "port")) {
                if (!fields.containsKey(required)) {
                    own.add("setting '" + prefix + "." + required + "' in " + source + " is missing (expected "
                            + accepts(required) + ")");
                }
            }
            problems.addAll(own);
            if (!own.isEmpty()) {
                continue;
            }
            String name = text(fields, "name");
            Integer sameName = names.putIfAbsent(name, i);
            if (sameName != null) {
                problems.add("setting '" + prefix + ".name' in " + source + ": service '" + name + "' is already"
                        + " declared by " + KEY + "[" + sameName + "]; give each service its own name");
            }
            String port = String.valueOf(Integer.parseInt(text(fields, "port")));
            String samePort = ports.putIfAbsent(port, KEY + "[" + i + "] (" + name + ")");
            if (samePort != null) {
                problems.add("setting '" + prefix + ".port' in " + source + ": port " + port + " is already declared by "
                        + samePort + "; give each service its own port");
            }
        }
        return problems;
    }

    /** The problem with one field's value, if any. */
    static Optional<String> fieldProblem(String source, String key, String field, Object value) {
        if (!FIELDS.contains(field)) {
            return Optional.of("unknown setting '" + key + "' in " + source + "; a service has " + String.join(", ", FIELDS));
        }
        if (value instanceof Map<?, ?> || value instanceof List<?>) {
            return Optional.of("setting '" + key + "' in " + source + " must be a single value (" + accepts(field) + ")");
        }
        String v = value == null ? "" : String.valueOf(value).strip();
        String problem = switch (field) {
            case "name" -> NAME.matcher(v).matches() ? null : "'" + v + "' is not a service name";
            case "port" -> {
                try {
                    int p = Integer.parseInt(v);
                    yield p >= 1 && p <= 65535 ? null : p + " is out of range";
                } catch (NumberFormatException e) {
                    yield "'" + v + "' is not a number";
                }
            }
            case "path" -> v.startsWith("/") && !v.contains(" ") && !v.contains("\n") ? null
                    : "'" + v + "' does not start with /";
            case "command" -> v.isEmpty() ? "empty (leave command out to declare an endpoint something else serves)" : null;
            default -> v.equals("true") || v.equals("false") ? null : "'" + v + "' is not true or false";
        };
        return problem == null ? Optional.empty() : Optional.of("invalid value for setting '" + key + "' in " + source
                + ": " + problem + " (expected " + accepts(field) + ")");
    }

    private static String accepts(String field) {
        return switch (field) {
            case "name" -> "1-31 lower-case letters, digits or '-', starting with a letter or digit, such as web";
            case "port" -> "a TCP port 1-65535";
            case "path" -> "the link's path, starting with /, such as /docs/";
            case "command" -> "a shell command, run with /bin/sh -c as the build user";
            default -> "true or false";
        };
    }

    /** Reads a validated list. */
    public static List<ServiceSettings> parse(List<?> list) {
        List<ServiceSettings> out = new ArrayList<>();
        for (Object o : list) {
            Map<String, Object> f = normalised((Map<?, ?>) o);
            String path = text(f, "path");
            String command = text(f, "command");
            out.add(new ServiceSettings(text(f, "name"), Integer.parseInt(text(f, "port")), path.isEmpty() ? "/" : path,
                    command.isEmpty() ? null : command, text(f, "keeps-alive").equals("true")));
        }
        return out;
    }

    private static Map<String, Object> normalised(Map<?, ?> m) {
        Map<String, Object> fields = new LinkedHashMap<>();
        m.forEach((k, v) -> fields.put(SettingsCatalog.normalise(String.valueOf(k)), v));
        return fields;
    }

    private static String text(Map<String, Object> f, String k) {
        Object v = f.get(k);
        return v == null ? "" : String.valueOf(v).strip();
    }
}
