package dev.kiln.testkit;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A server process a fixture started: its output goes to a log file, it is ready once it answers
 * HTTP, and closing it stops exactly that process and its descendants, never anything else.
 */
final class ManagedProcess implements AutoCloseable {

    private static final Logger LOG = LoggerFactory.getLogger(ManagedProcess.class);
    private static final Duration GRACE = Duration.ofSeconds(5);
    private static final int TAIL_LINES = 40;

    private final String name;
    private final Process process;
    private final Path log;
    private final Thread shutdownHook;
    private boolean closed;

    private ManagedProcess(String name, Process process, Path log) {
        this.name = name;
        this.process = process;
        this.log = log;
        // A test that forgets close(), or a JVM killed by Surefire's timeout, must not leave a
        // server running on the machine.
        this.shutdownHook = new Thread(this::stop, "stop " + name);
        Runtime.getRuntime().addShutdownHook(shutdownHook);
    }

    /**
     * Starts {@code command} with stdin from /dev/null and stdout and stderr in a temporary log.
     *
     * @param name a short name for messages, e.g. "moto_server"
     * @param command the argv
     * @param environment edits to the inherited environment, applied before start
     * @param workingDirectory the directory the process runs in
     */
    static ManagedProcess start(String name, List<String> command,
            Consumer<Map<String, String>> environment, Path workingDirectory) {
        try {
            Path log = Files.createTempFile("kiln-testkit-" + name + "-", ".log");
            ProcessBuilder builder = new ProcessBuilder(command)
                    .directory(workingDirectory.toFile())
                    .redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null")))
                    .redirectErrorStream(true)
                    .redirectOutput(log.toFile());
            environment.accept(builder.environment());
            Process process = builder.start();
            LOG.info("started {} (pid {}): {}; log {}", name, process.pid(), String.join(" ", command), log);
            return new ManagedProcess(name, process, log);
        } catch (IOException e) {
            throw new UncheckedIOException("could not start " + name + ": " + String.join(" ", command), e);
        }
    }

    /**
     * Polls {@code probe} until the process answers it with any HTTP status; stops the process and
     * throws, with the tail of its log, if it exits or does not answer within {@code timeout}.
     */
    void awaitHttp(URI probe, Duration timeout) {
        HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(1)).build();
        HttpRequest request = HttpRequest.newBuilder(probe).timeout(Duration.ofSeconds(2)).GET().build();
        awaitReady("answering " + probe, () -> {
            try {
                http.send(request, HttpResponse.BodyHandlers.discarding());
                return true;
            } catch (IOException notYet) {
                // Connection refused or reset while the server starts: try again shortly.
                return false;
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                close();
                throw new IllegalStateException("interrupted while waiting for " + name, e);
            }
        }, timeout);
    }

    /**
     * Polls {@code ready} until it is true; stops the process and throws, with the tail of its
     * log, if it exits or is not ready within {@code timeout}.
     *
     * @param what what ready means, for messages, e.g. "listening on 169.254.169.254:80"
     */
    void awaitReady(String what, java.util.function.BooleanSupplier ready, Duration timeout) {
        Instant deadline = Instant.now().plus(timeout);
        while (true) {
            if (!process.isAlive()) {
                String message = name + " exited with status " + process.exitValue()
                        + " before " + what + "; last lines of " + log + ":\n" + logTail();
                close();
                throw new IllegalStateException(message);
            }
            if (ready.getAsBoolean()) {
                return;
            }
            if (Instant.now().isAfter(deadline)) {
                String message = name + " was not " + what + " within " + timeout.toSeconds()
                        + " s; last lines of " + log + ":\n" + logTail();
                close();
                throw new IllegalStateException(message);
            }
            sleep(Duration.ofMillis(100));
        }
    }

    /** The process's id, for tests that check it is gone after close. */
    long pid() {
        return process.pid();
    }

    /** The last lines the process printed. */
    String logTail() {
        try {
            List<String> lines = Files.readAllLines(log, StandardCharsets.UTF_8);
            return String.join("\n", lines.subList(Math.max(0, lines.size() - TAIL_LINES), lines.size()));
        } catch (IOException | UncheckedIOException e) {
            return "(log unreadable: " + e + ")";
        }
    }

    /** Stops the process and its descendants, then deletes the log. Safe to call twice. */
    @Override
    public synchronized void close() {
        if (closed) {
            return;
        }
        closed = true;
        stop();
        try {
            Runtime.getRuntime().removeShutdownHook(shutdownHook);
        } catch (IllegalStateException alreadyShuttingDown) {
            // The hook is running or ran; nothing to remove.
        }
        try {
            Files.deleteIfExists(log);
        } catch (IOException e) {
            LOG.warn("could not delete {}", log, e);
        }
    }

    private void stop() {
        // Take the descendants first: once the parent is gone they are re-parented and out of reach.
        List<ProcessHandle> descendants = process.descendants().toList();
        terminate(process.toHandle());
        for (ProcessHandle descendant : descendants) {
            terminate(descendant);
        }
    }

    private void terminate(ProcessHandle handle) {
        if (!handle.isAlive()) {
            return;
        }
        handle.destroy();
        try {
            handle.onExit().get(GRACE.toMillis(), TimeUnit.MILLISECONDS);
        } catch (Exception stillRunning) {
            LOG.warn("{} pid {} ignored SIGTERM for {} s; killing it", name, handle.pid(), GRACE.toSeconds());
            handle.destroyForcibly();
            try {
                handle.onExit().get(GRACE.toMillis(), TimeUnit.MILLISECONDS);
            } catch (Exception e) {
                LOG.warn("{} pid {} still running after SIGKILL", name, handle.pid());
            }
        }
    }

    private static void sleep(Duration duration) {
        try {
            Thread.sleep(duration.toMillis());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted", e);
        }
    }
}
