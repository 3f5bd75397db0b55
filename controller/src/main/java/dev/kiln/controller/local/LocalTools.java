package dev.kiln.controller.local;

import dev.kiln.os.OsCommand;

import java.io.IOException;
import java.time.Duration;
import java.util.List;
import java.util.Map;

/**
 * The system tools the local provider runs (losetup, e2fsprogs, cp, rm, rsync, getent, chown),
 * each through {@link OsCommand}: looked up in {@link #TOOL_PATH}, run to its end within
 * {@link #TOOL_LIMIT}, and a non-zero exit an {@link IOException} that names the command.
 */
final class LocalTools {

    /** Where tools are looked up: losetup is in /usr/sbin, which a user's PATH may lack. */
    static final String TOOL_PATH = "/usr/sbin:/usr/bin:/sbin:/bin";

    /** Longest a tool may run: e2fsck replaying the journal of a large image copy is the slowest. */
    static final Duration TOOL_LIMIT = Duration.ofMinutes(10);

    private LocalTools() {
    }

    /** Runs a tool and returns what it printed (stdout, then stderr); a non-zero exit fails with that output. */
    static String run(String... argv) throws IOException {
        OsCommand.Result r = OsCommand.run(TOOL_LIMIT, Map.of("PATH", TOOL_PATH), List.of(argv));
        if (!r.ok()) {
            throw new IOException(String.join(" ", argv) + " failed (exit " + r.exitCode() + "): " + r.output().strip());
        }
        return r.output();
    }

    /**
     * Runs a tool in the C locale and returns its standard output, for parsing (e2fsprogs print
     * their banner on stderr); a non-zero exit fails.
     */
    static String stdout(String... argv) throws IOException {
        OsCommand.Result r = OsCommand.run(TOOL_LIMIT, Map.of("PATH", TOOL_PATH, "LC_ALL", "C"), List.of(argv));
        if (!r.ok()) {
            throw new IOException(String.join(" ", argv) + " failed (exit " + r.exitCode() + ")");
        }
        return r.stdout();
    }

    /** {@link #run}, for clean-up that may fail without harm (the caller checks what is left). */
    static void runQuietly(String... argv) {
        try {
            run(argv);
        } catch (IOException ignored) {
            // best effort
        }
    }
}
