package dev.kiln.controller.config;

import java.io.PrintStream;
import java.nio.file.Path;
import java.util.Map;
import java.util.Optional;

/**
 * What the CLI gets from the process it runs in: environment variables, home directory, and the
 * two output streams (data on stdout, narration on stderr). Tests build one with their own values.
 *
 * @param env  environment variables
 * @param home the user's home directory
 * @param out  where data goes (tables, JSON)
 * @param err  where narration, progress and errors go
 */
public record CliEnvironment(Map<String, String> env, Path home, PrintStream out, PrintStream err) {

    /** The real process environment. */
    public static CliEnvironment system() {
        // $HOME first, as shells and OpenSSH do; the JVM's user.home comes from the password database.
        String home = System.getenv("HOME");
        return new CliEnvironment(System.getenv(), Path.of(home != null && !home.isEmpty() ? home : System.getProperty("user.home")),
                System.out, System.err);
    }

    /** An environment variable, if set and not empty. */
    public Optional<String> get(String name) {
        String v = env.get(name);
        return v == null || v.isEmpty() ? Optional.empty() : Optional.of(v);
    }
}
