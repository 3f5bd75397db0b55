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
            "max-instances", "KILN_MAX_INSTANCES");

    private final CliEnvironment env;
    private final Map<String, String> file;

    private ControllerSettings(CliEnvironment env, Map<String, String> file) {
        this.env = env;
        this.file = file;
    }

    /** Loads {@code config.yml} (if present) and checks its keys. */
    public static ControllerSettings load(CliEnvironment env, KilnPaths paths) {
        Map<String, String> values = new LinkedHashMap<>();
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
                    if (!KEYS.containsKey(key)) {
                        throw new KilnException(ExitCodes.CONFIG, "unknown setting '" + key + "' in " + paths.configFile()
                                + " (known: " + String.join(", ", Set.copyOf(KEYS.keySet()).stream().sorted().toList()) + ")");
                    }
                    values.put(key, String.valueOf(e.getValue()));
                }
            }
        }
        return new ControllerSettings(env, values);
    }

    /** These settings with some values fixed (a command's own flags). */
    public ControllerSettings withOverrides(Map<String, String> overrides) {
        if (overrides.isEmpty()) {
            return this;
        }
        Map<String, String> merged = new LinkedHashMap<>(file);
        ControllerSettings s = new ControllerSettings(env, merged);
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
