package dev.kiln.e2e;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * Runs one of the repository's scripts (bin/kiln, bin/quickstart) as a new user would: from the
 * source tree, in a throwaway home, with none of the caller's KILN_* or XDG_* variables, and
 * without rebuilding the jars (this very Maven run just built them).
 */
final class RepoScript {

    static final Path ROOT = Path.of("..").toAbsolutePath().normalize();

    record Result(int code, String out, String err) {
    }

    private RepoScript() {
    }

    /** Runs {@code bin/kiln ARGS} as {@link #run} does, with two minutes to finish. */
    static Result kiln(Path home, Map<String, String> env, String... args) throws IOException, InterruptedException {
        String[] command = new String[args.length + 1];
        command[0] = ROOT.resolve("bin/kiln").toString();
        System.arraycopy(args, 0, command, 1, args.length);
        return run(home, env, Duration.ofSeconds(120), command);
    }

    /** Runs {@code command} with {@code home} as HOME plus {@code env}; stdout and stderr go to files in the home. */
    static Result run(Path home, Map<String, String> env, Duration timeout, String... command)
            throws IOException, InterruptedException {
        Path out = home.resolve("out.txt");
        Path err = home.resolve("err.txt");
        ProcessBuilder pb = new ProcessBuilder(command).directory(ROOT.toFile())
                .redirectOutput(out.toFile()).redirectError(err.toFile());
        pb.environment().keySet().removeIf(k -> k.startsWith("KILN_") || k.startsWith("XDG_"));
        pb.environment().put("HOME", home.toString());
        pb.environment().put("KILN_NO_BUILD", "1");
        pb.environment().putAll(env);
        Process p = pb.start();
        if (!p.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS)) {
            p.destroyForcibly();
            throw new AssertionError("timed out: " + Files.readString(err));
        }
        return new Result(p.exitValue(), Files.readString(out, StandardCharsets.UTF_8), Files.readString(err, StandardCharsets.UTF_8));
    }
}
