package dev.kiln.os;


import java.io.File;
import java.io.IOException;
import java.io.InputStream;
import java.io.InterruptedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Executor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * Runs an external program to its end with a time limit: no stdin (nothing can answer a prompt),
 * stdout and stderr collected apart, and the program killed once its time is up. Every program
 * Kiln runs for a short task (the agent's disk tools, systemd, getent, kill; the local provider's
 * losetup and e2fsck) goes through here.
 */
public final class OsCommand {

    /** The exit status a command that ran out of time reports, as timeout(1) does. */
    public static final int TIMED_OUT = 124;

    /** How long output is awaited after the program ended (a child it left may hold the pipes). */
    private static final long DRAIN_SECONDS = 10;

    /** Reads the programs' output; daemon threads, so a stuck pipe never holds the JVM up. */
    private static final Executor READERS = r -> {
        Thread t = new Thread(r, "kiln-command-output");
        t.setDaemon(true);
        t.start();
    };

    private OsCommand() {
    }

    /**
     * What a finished program printed, and its exit status.
     *
     * @param command  the command line, for messages
     * @param exitCode its exit status; {@value #TIMED_OUT} when it ran out of time
     * @param stdout   what it printed on stdout
     * @param stderr   what it printed on stderr (for a program that ran out of time, saying so)
     */
    public record Result(List<String> command, int exitCode, String stdout, String stderr) {

        public boolean ok() {
            return exitCode == 0;
        }

        /** Everything it printed: stdout, then stderr. */
        public String output() {
            return stdout + stderr;
        }

        /** The program's own words, for error messages: stdout and stderr, on one line. */
        public String said() {
            String text = (stdout.strip() + "\n" + stderr.strip()).strip();
            return text.replaceAll("\\s*\\n\\s*", "; ");
        }

        /** {@code "mkfs.ext4 ... exited 1: <what it said>"}. */
        public String describe() {
            return String.join(" ", command) + " exited " + exitCode + (said().isEmpty() ? "" : ": " + said());
        }
    }

    /** {@link #run(Duration, Map, List)} in this process's own environment. */
    public static Result run(Duration limit, List<String> command) throws IOException {
        return run(limit, Map.of(), command);
    }

    /**
     * Runs {@code command} with {@code environment} added to this process's and waits for it at most
     * {@code limit}; a program still running then is killed and reported as exit
     * {@value #TIMED_OUT}, "did not finish within LIMIT". A PATH in {@code environment} is also
     * where the program is looked for.
     *
     * @throws IOException            when the program cannot be started (missing, not executable)
     * @throws InterruptedIOException when this thread is interrupted while waiting (the program is
     *                                killed, and the thread's interrupt flag stays set)
     */
    public static Result run(Duration limit, Map<String, String> environment, List<String> command) throws IOException {
        List<String> argv = List.copyOf(command);
        List<String> resolved = new ArrayList<>(argv);
        if (environment.containsKey("PATH")) {
            resolved.set(0, Executables.find(argv.get(0), environment.get("PATH")));
        }
        ProcessBuilder pb = new ProcessBuilder(resolved).redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")));
        pb.environment().putAll(environment);
        Process p = pb.start();
        CompletableFuture<String> out = CompletableFuture.supplyAsync(() -> drain(p.getInputStream()), READERS);
        CompletableFuture<String> err = CompletableFuture.supplyAsync(() -> drain(p.getErrorStream()), READERS);
        try {
            if (!p.waitFor(limit.toMillis(), TimeUnit.MILLISECONDS)) {
                p.destroyForcibly();
                p.waitFor(DRAIN_SECONDS, TimeUnit.SECONDS);
                return new Result(argv, TIMED_OUT, collected(out), "did not finish within " + limit);
            }
            return new Result(argv, p.exitValue(), collected(out), collected(err));
        } catch (InterruptedException e) {
            p.destroyForcibly();
            Thread.currentThread().interrupt();
            InterruptedIOException io = new InterruptedIOException("interrupted while running " + String.join(" ", argv));
            io.initCause(e);
            throw io;
        }
    }

    private static String collected(CompletableFuture<String> output) throws InterruptedException {
        try {
            return output.get(DRAIN_SECONDS, TimeUnit.SECONDS);
        } catch (ExecutionException | TimeoutException e) {
            return "";
        }
    }

    private static String drain(InputStream in) {
        try (in) {
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        } catch (IOException e) {
            return "";
        }
    }
}
