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
            settings = ControllerSettings.load(env, paths);
        }
        return settings;
    }

    /** Data. */
    public PrintStream out() {
        return env.out();
    }

    /** Narration, progress and errors. */
    public PrintStream err() {
        return env.err();
    }

    public Clock clock() {
        return Clock.systemUTC();
    }
}
