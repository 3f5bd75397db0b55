package dev.kiln.controller.fleet;

import dev.kiln.controller.ExitCodes;
import dev.kiln.controller.KilnException;

import java.net.URI;
import java.net.URISyntaxException;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A service the agent runs (or only shows a link to), written {@code NAME:PORT[/PATH][=COMMAND]}:
 * {@code web:8000=python3 -m http.server 8000} is a command the agent supervises, {@code
 * shop:8080/admin} an endpoint something else serves (a {@code docker compose up -d} in the boot
 * script). It becomes one entry of {@code kiln.services} in the agent's settings.
 *
 * @param name       [a-z0-9][a-z0-9-]{0,30}
 * @param port       TCP port on the instance, 1-65535
 * @param path       the link's path, "/" by default
 * @param command    run with /bin/sh -c as the build user, or null for a declared-only endpoint
 * @param keepsAlive whether it counts as busy for the idle timeout while it runs
 */
public record ServiceSpec(String name, int port, String path, String command, boolean keepsAlive) {

    /** The form, as messages show it. */
    public static final String FORM = "NAME:PORT[/PATH][=COMMAND]";

    private static final String EXAMPLES = "e.g. web:8000=python3 -m http.server 8000, or shop:8080/admin for a port"
            + " something else serves";

    private static final Pattern NAME = Pattern.compile("[a-z0-9][a-z0-9-]{0,30}");
    private static final Pattern HEAD = Pattern.compile("([^:/=]*):([0-9]{1,5})(/[^=]*)?");

    /** This service, counting (or not) as busy for the idle timeout. */
    public ServiceSpec keepingAlive(boolean keeps) {
        return new ServiceSpec(name, port, path, command, keeps);
    }

    /** Parses {@code NAME:PORT[/PATH][=COMMAND]}; USAGE naming the problem and the form otherwise. */
    public static ServiceSpec parse(String text) {
        int eq = text.indexOf('=');
        String head = (eq < 0 ? text : text.substring(0, eq)).strip();
        String command = eq < 0 ? null : text.substring(eq + 1).strip();
        Matcher m = HEAD.matcher(head);
        if (!m.matches()) {
            throw bad(text, "is not " + FORM + " (" + EXAMPLES + ")");
        }
        String name = m.group(1);
        if (!NAME.matcher(name).matches()) {
            throw bad(text, "the name '" + name + "' must be 1-31 lower-case letters, digits and '-', starting with a letter"
                    + " or digit (" + FORM + ")");
        }
        int port = Integer.parseInt(m.group(2));
        if (port < 1 || port > 65535) {
            throw bad(text, "port " + port + " is not 1-65535");
        }
        String path = m.group(3) == null ? "/" : m.group(3);
        checkPath(text, path);
        if (command != null && command.isEmpty()) {
            throw bad(text, "nothing follows '='; give the command after it, or leave '=' out to declare a port that"
                    + " something else serves (" + FORM + ")");
        }
        return new ServiceSpec(name, port, path, command, false);
    }

    /**
     * One entry of a template's {@code services}: the same text as {@code --service}, or a map
     * with {@code name}, {@code port}, {@code path}, {@code command} and {@code keeps-alive}.
     */
    public static ServiceSpec fromTemplate(Object entry, String template) {
        try {
            if (entry instanceof Map<?, ?> map) {
                return fromMap(map);
            }
            if (entry instanceof String || entry instanceof Number) {
                return parse(String.valueOf(entry));
            }
            throw new KilnException(ExitCodes.USAGE, "a service is " + FORM + " or a map with name, port, path, command and"
                    + " keeps-alive, not " + entry);
        } catch (KilnException e) {
            throw new KilnException(ExitCodes.CONFIG, "template '" + template + "': services: " + e.getMessage(), e);
        }
    }

    private static final Set<String> MAP_KEYS = Set.of("name", "port", "path", "command", "keeps-alive");

    private static ServiceSpec fromMap(Map<?, ?> map) {
        Map<String, Object> m = new LinkedHashMap<>();
        map.forEach((k, v) -> m.put(String.valueOf(k), v));
        for (String k : m.keySet()) {
            if (!MAP_KEYS.contains(k)) {
                throw new KilnException(ExitCodes.USAGE, "unknown key '" + k + "' in " + m + " (a service has name, port, path,"
                        + " command, keeps-alive)");
            }
        }
        if (!m.containsKey("name") || !m.containsKey("port")) {
            throw new KilnException(ExitCodes.USAGE, m + " needs at least a name and a port, e.g. {name: web, port: 8000}");
        }
        String text = m.get("name") + ":" + m.get("port") + (m.containsKey("path") ? String.valueOf(m.get("path")) : "");
        Object command = m.get("command");
        if (command instanceof Map<?, ?> || command instanceof List<?>) {
            throw new KilnException(ExitCodes.USAGE, m + ": command is one line of /bin/sh, not " + command);
        }
        ServiceSpec s = parse(command == null ? text : text + "=" + command);
        Object keeps = m.getOrDefault("keeps-alive", false);
        if (!(keeps instanceof Boolean b)) {
            throw new KilnException(ExitCodes.USAGE, m + ": keeps-alive is true or false, not " + keeps);
        }
        return s.keepingAlive(b);
    }

    /**
     * Checks a launch's services together: names and ports each once, none on a port the agent
     * itself listens on, and every {@code --service-keeps-alive} naming one of them.
     *
     * @param reserved ports the instance's agent uses, with what for (e.g. 7443: the agent's gRPC)
     * @return the services, those named in {@code keepsAlive} marked so
     */
    public static List<ServiceSpec> check(List<ServiceSpec> services, List<String> keepsAlive, Map<Integer, String> reserved) {
        Map<String, List<ServiceSpec>> byName = new TreeMap<>();
        Map<Integer, List<ServiceSpec>> byPort = new TreeMap<>();
        for (ServiceSpec s : services) {
            byName.computeIfAbsent(s.name(), n -> new ArrayList<>()).add(s);
            byPort.computeIfAbsent(s.port(), p -> new ArrayList<>()).add(s);
        }
        byName.forEach((n, given) -> {
            if (given.size() > 1) {
                throw new KilnException(ExitCodes.USAGE, "--service gives the name '" + n + "' " + given.size() + " times ("
                        + String.join(", ", given.stream().map(ServiceSpec::describe).toList()) + "); nothing was launched:"
                        + " give each service its own name");
            }
        });
        byPort.forEach((p, given) -> {
            if (given.size() > 1) {
                throw new KilnException(ExitCodes.USAGE, "port " + p + " is declared by " + given.size() + " services ("
                        + String.join(", ", given.stream().map(ServiceSpec::describe).toList()) + "); nothing was launched:"
                        + " give each service its own port");
            }
            if (reserved.containsKey(p)) {
                throw new KilnException(ExitCodes.USAGE, "port " + p + " of service '" + given.get(0).name() + "' is "
                        + reserved.get(p) + "; nothing was launched: choose another port");
            }
        });
        List<String> unknown = keepsAlive.stream().filter(n -> !byName.containsKey(n)).distinct().toList();
        if (!unknown.isEmpty()) {
            throw new KilnException(ExitCodes.USAGE, "--service-keeps-alive " + String.join(", ", unknown) + " names no service"
                    + " of this launch (" + (services.isEmpty() ? "it declares none; add --service " + FORM
                    : "declared: " + String.join(", ", byName.keySet())) + "); nothing was launched");
        }
        return services.stream().map(s -> keepsAlive.contains(s.name()) ? s.keepingAlive(true) : s).toList();
    }

    /** As written on the command line: NAME:PORT[/PATH][=COMMAND]. */
    public String describe() {
        return name + ":" + port + (path.equals("/") ? "" : path) + (command == null ? "" : "=" + command);
    }

    /** The entry of {@code kiln.services}: name, port, path (when not "/"), command (when any), keeps-alive (when true). */
    public Map<String, Object> settings() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("name", name);
        m.put("port", port);
        if (!path.equals("/")) {
            m.put("path", path);
        }
        if (command != null) {
            m.put("command", command);
        }
        if (keepsAlive) {
            m.put("keeps-alive", true);
        }
        return m;
    }

    private static void checkPath(String text, String path) {
        try {
            // "//host/x" would be a link to another host: a path has no authority.
            URI u = new URI(path);
            if (u.getScheme() != null || u.getRawAuthority() != null || u.getRawPath() == null || !u.getRawPath().startsWith("/")) {
                throw new URISyntaxException(path, "not a path");
            }
        } catch (URISyntaxException e) {
            throw bad(text, "the path '" + path + "' is not a URL path such as /admin (no spaces, no '//' at its start;"
                    + " escape other characters as %XX)");
        }
    }

    private static KilnException bad(String text, String why) {
        return new KilnException(ExitCodes.USAGE, "--service '" + text + "': " + why);
    }
}
