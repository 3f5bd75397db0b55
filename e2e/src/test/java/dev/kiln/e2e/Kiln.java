package dev.kiln.e2e;

import dev.kiln.controller.KilnCli;
import dev.kiln.controller.config.CliEnvironment;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;

/** Runs the real kiln CLI in-process with its own home, config and state directories. */
final class Kiln {

    /** What one command printed and returned. */
    record Run(int exitCode, String out, String err) {
        @Override
        public String toString() {
            return "exit " + exitCode + "\n--- stdout\n" + out + "--- stderr\n" + err;
        }
    }

    private final Path home;
    private final Map<String, String> env = new HashMap<>();

    Kiln(Path home) {
        this.home = home;
        env.put("XDG_CONFIG_HOME", home.resolve(".config").toString());
        env.put("XDG_STATE_HOME", home.resolve(".local/state").toString());
        env.put("KILN_AGENT_JAR", AgentProcess.jar().toString());
    }

    Kiln env(String name, String value) {
        env.put(name, value);
        return this;
    }

    /** The environment variables each command gets (for a kiln run as a process of its own). */
    Map<String, String> environment() {
        return Map.copyOf(env);
    }

    Path configDir() {
        return home.resolve(".config/kiln");
    }

    Path stateDir() {
        return home.resolve(".local/state/kiln");
    }

    Run run(String... args) {
        return run(new ByteArrayOutputStream(), args);
    }

    /** Runs with stdout going to {@code out} as it is written (for following a log live). */
    Run run(ByteArrayOutputStream out, String... args) {
        return run(out, new ByteArrayOutputStream(), args);
    }

    /** Runs with stdout and stderr going to {@code out} and {@code err} as they are written. */
    Run run(ByteArrayOutputStream out, ByteArrayOutputStream err, String... args) {
        int code;
        try (PrintStream o = new PrintStream(out, true, StandardCharsets.UTF_8);
             PrintStream e = new PrintStream(err, true, StandardCharsets.UTF_8)) {
            code = KilnCli.run(new CliEnvironment(Map.copyOf(env), home, o, e), args);
        }
        return new Run(code, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
    }
}
