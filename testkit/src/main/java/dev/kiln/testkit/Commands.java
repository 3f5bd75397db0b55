package dev.kiln.testkit;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.concurrent.TimeUnit;

/** Runs short external commands (losetup, mknod) to completion and captures what they print. */
final class Commands {

    /** What a finished command printed, and its exit status. */
    record Result(List<String> command, int exitCode, String stdout, String stderr) {

        boolean succeeded() {
            return exitCode == 0;
        }

        /** Throws unless the command exited 0; the message carries what it printed on stderr. */
        Result orThrow() {
            if (!succeeded()) {
                throw new IllegalStateException(describe());
            }
            return this;
        }

        String describe() {
            return String.join(" ", command) + " exited " + exitCode
                    + (stderr.isBlank() ? "" : ": " + stderr.strip())
                    + (stdout.isBlank() ? "" : " (stdout: " + stdout.strip() + ")");
        }
    }

    private static final long TIMEOUT_SECONDS = 60;

    private Commands() {
    }

    /** Runs {@code command} with no stdin and waits (at most a minute) for it to exit. */
    static Result run(String... command) {
        List<String> argv = List.of(command);
        try {
            Process process = new ProcessBuilder(argv)
                    .redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null")))
                    .start();
            // Commands here print little; reading stdout fully before stderr cannot deadlock on them.
            String stdout = new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            String stderr = new String(process.getErrorStream().readAllBytes(), StandardCharsets.UTF_8);
            if (!process.waitFor(TIMEOUT_SECONDS, TimeUnit.SECONDS)) {
                process.destroyForcibly();
                throw new IllegalStateException(String.join(" ", argv) + " did not exit in "
                        + TIMEOUT_SECONDS + " s");
            }
            return new Result(argv, process.exitValue(), stdout, stderr);
        } catch (IOException e) {
            throw new UncheckedIOException("could not run " + String.join(" ", argv), e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while running " + String.join(" ", argv), e);
        }
    }
}
