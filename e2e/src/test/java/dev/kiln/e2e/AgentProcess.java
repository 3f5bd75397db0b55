package dev.kiln.e2e;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A real kiln-agent process started from its packaged jar, the way systemd starts it: settings in
 * a file named by MICRONAUT_CONFIG_FILES, plus environment variables. Stopped by its own pid.
 */
final class AgentProcess implements AutoCloseable {

    private static final Pattern LISTENING = Pattern.compile("listening on (\\S+):(\\d+) ");

    private final Process process;
    private final StringBuffer output = new StringBuffer();
    private final CompletableFuture<Integer> port = new CompletableFuture<>();

    private AgentProcess(Process process) {
        this.process = process;
        Thread reader = new Thread(() -> {
            try (BufferedReader r = new BufferedReader(new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8))) {
                String line;
                while ((line = r.readLine()) != null) {
                    output.append(line).append('\n');
                    Matcher m = LISTENING.matcher(line);
                    if (m.find()) {
                        port.complete(Integer.parseInt(m.group(2)));
                    }
                }
            } catch (IOException ignored) {
                // the process ended
            }
            port.completeExceptionally(new IllegalStateException("agent exited before listening"));
        }, "agent-output");
        reader.setDaemon(true);
        reader.start();
    }

    static Path jar() {
        Path jar = Path.of(System.getProperty("kiln.agent.jar", "../agent/target/kiln-agent.jar")).toAbsolutePath().normalize();
        if (!Files.isRegularFile(jar)) {
            throw new IllegalStateException("kiln-agent jar not found at " + jar + "; run `mvn -pl agent -am package` first");
        }
        return jar;
    }

    /** Starts the agent with this settings file and extra environment. */
    static AgentProcess start(Path settings, Map<String, String> env) throws IOException {
        return start(List.of(), settings, env);
    }

    /** Starts the agent with these JVM options (e.g. the systemd unit's), settings file and environment. */
    static AgentProcess start(List<String> jvmOptions, Path settings, Map<String, String> env) throws IOException {
        return start(List.of(), jvmOptions, settings, env);
    }

    /** Starts the agent under a wrapper command (e.g. one that gives it its own mount namespace); the wrapper must exec it. */
    static AgentProcess start(List<String> wrapper, List<String> jvmOptions, Path settings, Map<String, String> env)
            throws IOException {
        String java = ProcessHandle.current().info().command().orElse("java");
        List<String> command = new ArrayList<>(wrapper);
        command.add(java);
        command.addAll(jvmOptions);
        command.addAll(List.of("-jar", jar().toString()));
        ProcessBuilder pb = new ProcessBuilder(command).redirectErrorStream(true);
        pb.environment().keySet().removeIf(k -> k.startsWith("KILN_") || k.startsWith("MICRONAUT_"));
        pb.environment().put("MICRONAUT_CONFIG_FILES", settings.toString());
        pb.environment().putAll(env);
        return new AgentProcess(pb.start());
    }

    /**
     * Starts an agent by a whole command line of the caller's (e.g. the image's own java and jar
     * under {@code chroot}), with only this environment's KILN_* and MICRONAUT_* variables.
     */
    static AgentProcess startCommand(List<String> command, Map<String, String> env) throws IOException {
        ProcessBuilder pb = new ProcessBuilder(command).redirectErrorStream(true);
        pb.environment().keySet().removeIf(k -> k.startsWith("KILN_") || k.startsWith("MICRONAUT_"));
        pb.environment().putAll(env);
        return new AgentProcess(pb.start());
    }

    /** Waits until the agent says it listens, and returns its port. */
    int awaitListening(Duration timeout) {
        try {
            return port.get(timeout.toMillis(), TimeUnit.MILLISECONDS);
        } catch (Exception e) {
            throw new AssertionError("agent did not start listening within " + timeout + "; output:\n" + output, e);
        }
    }

    /** Waits for the process to exit and returns its status. */
    int awaitExit(Duration timeout) throws InterruptedException {
        if (!process.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS)) {
            throw new AssertionError("agent still running after " + timeout + "; output:\n" + output);
        }
        Instant end = Instant.now().plusSeconds(2);
        while (!port.isDone() && Instant.now().isBefore(end)) {
            Thread.sleep(20); // let the reader drain the last lines
        }
        return process.exitValue();
    }

    String output() {
        return output.toString();
    }

    /** How much output there is so far: a mark for {@link #awaitLine(int, Pattern, Duration)}. */
    int outputLength() {
        return output.length();
    }

    /**
     * Waits for a line of output after {@code mark} that {@code pattern} finds, and returns it:
     * the agent logs from its own threads, possibly after the client has seen the outcome.
     */
    String awaitLine(int mark, Pattern pattern, Duration timeout) throws InterruptedException {
        Instant end = Instant.now().plus(timeout);
        while (true) {
            String since = output.substring(Math.min(mark, output.length()));
            for (String line : since.split("\n")) {
                if (pattern.matcher(line).find()) {
                    return line;
                }
            }
            if (Instant.now().isAfter(end)) {
                throw new AssertionError("no line of the agent's output matched /" + pattern + "/ within " + timeout
                        + "; its output since the mark:\n" + since);
            }
            Thread.sleep(20);
        }
    }

    boolean alive() {
        return process.isAlive();
    }

    long pid() {
        return process.pid();
    }

    /**
     * Freezes the agent as a hung one (SIGSTOP): its port still accepts connections, but nothing
     * answers. {@link #resume} undoes it.
     */
    void hang() throws Exception {
        signal("STOP");
    }

    /** Lets a {@link #hang hung} agent run again (SIGCONT). */
    void resume() throws Exception {
        signal("CONT");
    }

    private void signal(String name) throws Exception {
        Process kill = new ProcessBuilder("kill", "-" + name, Long.toString(process.pid())).inheritIO().start();
        if (kill.waitFor() != 0) {
            throw new IllegalStateException("kill -" + name + " " + process.pid() + " failed");
        }
    }

    /** Ends the agent as a crash would: SIGKILL, no shutdown hooks. */
    void kill() throws InterruptedException {
        process.destroyForcibly();
        process.waitFor(20, TimeUnit.SECONDS);
    }

    @Override
    public void close() throws InterruptedException {
        process.destroy();
        if (!process.waitFor(20, TimeUnit.SECONDS)) {
            process.destroyForcibly();
            process.waitFor(10, TimeUnit.SECONDS);
        }
    }
}
