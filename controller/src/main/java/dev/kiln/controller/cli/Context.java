package dev.kiln.controller.cli;

import dev.kiln.controller.config.CliEnvironment;
import dev.kiln.controller.config.ControllerSettings;
import dev.kiln.controller.config.KilnPaths;
import jakarta.inject.Singleton;

import java.io.PrintStream;
import java.time.Clock;

/** What every command needs: paths, settings, output streams, a clock. */
@Singleton
public class Context {

    private final CliEnvironment env;
    private final KilnPaths paths;
    private ControllerSettings settings;

    public Context(CliEnvironment env) {
        this.env = env;
        this.paths = KilnPaths.from(env);
    }

    public CliEnvironment env() {
        return env;
    }

    public KilnPaths paths() {
        return paths;
    }

    /** Settings, loaded on first use (so `kiln init` works with a broken config file). */
    public synchronized ControllerSettings settings() {
        if (settings == null) {
            settings = ControllerSettings.load(env, paths).withOverrides(overrides);
        }
        return settings;
    }

    private final java.util.Map<String, String> overrides = new java.util.HashMap<>();

    /** A setting given by a command's own flag, which beats everything else. */
    public synchronized void overrideSetting(String key, String value) {
        overrides.put(key, value);
        settings = null;
    }

    /** Data. */
    public PrintStream out() {
        return env.out();
    }

    /** Narration, progress and errors. */
    public PrintStream err() {
        return env.err();
    }

    /** True when stderr is an interactive terminal (progress bars), false when piped or in tests. */
    public boolean terminal() {
        return System.console() != null && env.err() == System.err;
    }

    /** The request timeout: --timeout, KILN_TIMEOUT, config.yml, or 10s. */
    public java.time.Duration timeout(String flag) {
        return Durations.parse(settings().get("timeout", flag).orElse(AgentClients.REQUEST));
    }

    public Clock clock() {
        return Clock.systemUTC();
    }
}
