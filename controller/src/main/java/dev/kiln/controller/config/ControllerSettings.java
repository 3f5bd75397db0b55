package dev.kiln.controller.config;

import dev.kiln.controller.ExitCodes;
import dev.kiln.controller.KilnException;
import org.yaml.snakeyaml.LoaderOptions;
import org.yaml.snakeyaml.Yaml;
import org.yaml.snakeyaml.constructor.SafeConstructor;
import org.yaml.snakeyaml.error.YAMLException;

import java.io.IOException;
import java.nio.file.Files;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;
import java.util.Set;

/**
 * The controller's settings, resolved with one precedence everywhere:
 * command-line flag &gt; {@code KILN_*} environment variable &gt; {@code config.yml} &gt; default.
 * Unknown keys in {@code config.yml} are errors that name the key.
 */
public final class ControllerSettings {

    /** Keys {@code config.yml} may hold, and the environment variables that override them. */
    public static final Map<String, String> KEYS = Map.of(
            "agent", "KILN_AGENT",
            "output", "KILN_OUTPUT",
            "timeout", "KILN_TIMEOUT",
            "region", "KILN_REGION",
            "ec2-endpoint", "KILN_EC2_ENDPOINT",
            "address", "KILN_ADDRESS",
            "max-instances", "KILN_MAX_INSTANCES",
            "provider", "KILN_PROVIDER");

    /** What a launch template ({@code templates: NAME: ...} in config.yml) may set: kiln launch's options. */
    public static final Set<String> TEMPLATE_KEYS = Set.of("provider", "ami", "type", "subnet", "security-group", "key-name",
            "instance-profile", "collection", "ttl", "max-lifetime", "volume", "label", "boot-build", "boot-profile", "boot-tree", "grpc-port",
            "keep-volume", "forever", "boot-script", "services", "service-keeps-alive", "forward-ports", "schedule");

    private final CliEnvironment env;
    private final Map<String, String> file;
    private Map<String, Map<String, Object>> templates = Map.of();

    private ControllerSettings(CliEnvironment env, Map<String, String> file) {
        this.env = env;
        this.file = file;
    }

    /** The launch template of this name from config.yml, if any: option name to a string, list or map. */
    public Optional<Map<String, Object>> template(String name) {
        return Optional.ofNullable(templates.get(name));
    }

    /** The names of config.yml's launch templates, in the file's order. */
    public java.util.List<String> templateNames() {
        return java.util.List.copyOf(templates.keySet());
    }

    /** Loads {@code config.yml} (if present) and checks its keys. */
    public static ControllerSettings load(CliEnvironment env, KilnPaths paths) {
        Map<String, String> values = new LinkedHashMap<>();
        Map<String, Map<String, Object>> templates = new LinkedHashMap<>();
        if (Files.exists(paths.configFile())) {
            Object doc;
            try {
                doc = new Yaml(new SafeConstructor(new LoaderOptions())).load(Files.readString(paths.configFile()));
            } catch (IOException | YAMLException e) {
                throw new KilnException(ExitCodes.CONFIG, "cannot read " + paths.configFile() + ": " + e.getMessage(), e);
            }
            if (doc != null && !(doc instanceof Map<?, ?>)) {
                throw new KilnException(ExitCodes.CONFIG, paths.configFile() + " must be a YAML map of settings");
            }
            if (doc != null) {
                for (Map.Entry<?, ?> e : ((Map<?, ?>) doc).entrySet()) {
                    String key = String.valueOf(e.getKey());
                    if (key.equals("templates")) {
                        templates = templates(paths, e.getValue());
                        continue;
                    }
                    if (!KEYS.containsKey(key)) {
                        throw new KilnException(ExitCodes.CONFIG, "unknown setting '" + key + "' in " + paths.configFile()
                                + " (known: " + String.join(", ", Set.copyOf(KEYS.keySet()).stream().sorted().toList()) + ")");
                    }
                    values.put(key, String.valueOf(e.getValue()));
                }
            }
        }
        ControllerSettings settings = new ControllerSettings(env, values);
        settings.templates = templates;
        return settings;
    }

    private static Map<String, Map<String, Object>> templates(KilnPaths paths, Object doc) {
        if (!(doc instanceof Map<?, ?> all)) {
            throw new KilnException(ExitCodes.CONFIG, "templates in " + paths.configFile() + " must be a map of template names"
                    + " to launch options, e.g. templates: {preview: {ttl: 2h, volume: [data:10]}}");
        }
        Map<String, Map<String, Object>> out = new LinkedHashMap<>();
        for (Map.Entry<?, ?> t : all.entrySet()) {
            String name = String.valueOf(t.getKey());
            if (!name.matches("[a-z][a-z0-9-]{0,31}")) {
                throw new KilnException(ExitCodes.CONFIG, "template name '" + name + "' in " + paths.configFile()
                        + " must be lower-case letters, digits and '-' (it becomes the kiln:role tag)");
            }
            if (!(t.getValue() instanceof Map<?, ?> options)) {
                throw new KilnException(ExitCodes.CONFIG, "template '" + name + "' in " + paths.configFile() + " must be a map of"
                        + " launch options (" + String.join(", ", TEMPLATE_KEYS.stream().sorted().toList()) + ")");
            }
            Map<String, Object> o = new LinkedHashMap<>();
            for (Map.Entry<?, ?> e : options.entrySet()) {
                String key = String.valueOf(e.getKey());
                if (!TEMPLATE_KEYS.contains(key)) {
                    throw new KilnException(ExitCodes.CONFIG, "unknown launch option '" + key + "' in template '" + name + "' of "
                            + paths.configFile() + " (known: " + String.join(", ", TEMPLATE_KEYS.stream().sorted().toList()) + ")");
                }
                o.put(key, e.getValue());
            }
            out.put(name, o);
        }
        return out;
    }

    /** These settings with some values fixed (a command's own flags). */
    public ControllerSettings withOverrides(Map<String, String> overrides) {
        if (overrides.isEmpty()) {
            return this;
        }
        Map<String, String> merged = new LinkedHashMap<>(file);
        ControllerSettings s = new ControllerSettings(env, merged);
        s.templates = templates;
        s.flags.putAll(overrides);
        return s;
    }

    private final Map<String, String> flags = new LinkedHashMap<>();

    /** A setting's value: the flag if given, else its environment variable, else config.yml. */
    public Optional<String> get(String key, String flagValue) {
        if (!KEYS.containsKey(key)) {
            throw new IllegalArgumentException("unknown controller setting " + key);
        }
        if (flagValue != null && !flagValue.isEmpty()) {
            return Optional.of(flagValue);
        }
        if (flags.containsKey(key)) {
            return Optional.of(flags.get(key));
        }
        Optional<String> fromEnv = env.get(KEYS.get(key));
        if (fromEnv.isPresent()) {
            return fromEnv;
        }
        return Optional.ofNullable(file.get(key));
    }
}
