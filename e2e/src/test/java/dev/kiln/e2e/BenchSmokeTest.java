package dev.kiln.e2e;

import dev.kiln.testkit.Prerequisites;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;

import java.io.File;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Runs every benchmark that {@code bench/run} lists in ALL once, in its smoke mode ({@code SMOKE=1}:
 * one run, tiny sizes, every output still checked), so the scripts cannot rot. The list is read
 * from bench/run, so a new benchmark is covered as soon as it is added there. Each must exit 0 and
 * print at least one summary row ({@code | what | kiln | alternative | ratio | target | met |}).
 * A benchmark (or bench/run) that exits 3 is missing a tool: that skips here and fails under
 * {@code CI=true}. The figures of a smoke run mean nothing; the targets live in the full runs.
 */
class BenchSmokeTest {

    static final Path ROOT = Path.of("..").toAbsolutePath().normalize();
    static final Path BENCH_RUN = ROOT.resolve("bench/run");
    /** The exit status by which bench/run and the scripts say a tool is missing. */
    static final int MISSING_TOOL = 3;
    /** Far above a smoke run's time (seconds each); only a hung script gets near it. */
    static final Duration TIMEOUT = Duration.ofMinutes(4);
    static final Pattern ALL = Pattern.compile("(?m)^ALL=\\(([^)]*)\\)");
    /** A summary row: six cells, the last saying whether the target was met. */
    static final Pattern SUMMARY_ROW = Pattern.compile("(?m)^\\|(?:[^|\\n]*\\|){4}[^|\\n]*\\| *(?:yes|no[^|\\n]*|-) *\\|$");

    static List<String> benchmarks() throws IOException {
        Matcher m = ALL.matcher(Files.readString(BENCH_RUN));
        assertTrue(m.find(), "bench/run defines ALL=(...)");
        List<String> names = List.of(m.group(1).trim().split("\\s+"));
        assertFalse(names.isEmpty() || names.get(0).isEmpty(), "bench/run's ALL lists benchmarks");
        return names;
    }

    @TestFactory
    Stream<DynamicTest> everyBenchmarkRunsOnceInSmokeMode() throws IOException {
        return benchmarks().stream().map(name -> DynamicTest.dynamicTest(name, () -> smoke(name)));
    }

    private static void smoke(String name) {
        Prerequisites.requireRoot("the benchmarks (they start OpenSSH's sshd, which needs root)");
        Prerequisites.requireCommand("bash", "apt-get install bash");
        // bench/run with KILN_NO_BUILD=1 and the scripts run bin/kiln on these jars: this build's.
        Path agentJar = ROOT.resolve("agent/target/kiln-agent.jar");
        assertEquals(AgentProcess.jar(), agentJar, "the benchmarks use this build's agent jar");
        assertTrue(Files.isRegularFile(ROOT.resolve("controller/target/kiln.jar")), "this build made controller/target/kiln.jar");

        long t0 = System.nanoTime();
        Result r = run(name);
        double seconds = (System.nanoTime() - t0) / 1e9;
        System.out.printf("bench smoke: %s took %.1f s%n", name, seconds);
        if (r.exitCode == MISSING_TOOL) {
            Prerequisites.require("the tools of benchmark " + name + " (" + lastLine(r.stderr) + ")", false,
                    "bash .ci/install");
        }
        assertEquals(0, r.exitCode, name + " failed in smoke mode:\n" + r);
        assertTrue(SUMMARY_ROW.matcher(r.stdout).find(), name + " printed no summary row:\n" + r);
    }

    record Result(int exitCode, String stdout, String stderr) {
        @Override
        public String toString() {
            return "exit " + exitCode + "\n--- stdout\n" + stdout + "--- stderr (end)\n" + tail(stderr, 4000);
        }
    }

    /** bench/run NAME with SMOKE=1, on the jars Maven built (KILN_NO_BUILD=1), no stdin. */
    private static Result run(String name) {
        ProcessBuilder pb = new ProcessBuilder(BENCH_RUN.toString(), name).directory(ROOT.toFile())
                .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")));
        pb.environment().keySet().removeIf(k -> k.startsWith("KILN_") || k.startsWith("MICRONAUT_")
                || List.of("RUNS", "SIZE_MB", "FILES", "N", "VARIANTS", "SMALL", "CIPHER").contains(k));
        pb.environment().put("SMOKE", "1");
        pb.environment().put("KILN_NO_BUILD", "1");
        try {
            Process p = pb.start();
            CompletableFuture<String> out = CompletableFuture.supplyAsync(() -> read(p.getInputStream()));
            CompletableFuture<String> err = CompletableFuture.supplyAsync(() -> read(p.getErrorStream()));
            if (!p.waitFor(TIMEOUT.toMillis(), TimeUnit.MILLISECONDS)) {
                // Deepest first, so each script's EXIT trap (kiln down, kill sshd) runs as its children go.
                List<ProcessHandle> tree = new ArrayList<>(p.descendants().toList());
                Collections.reverse(tree);
                tree.forEach(ProcessHandle::destroy);
                p.destroy();
                p.waitFor(30, TimeUnit.SECONDS);
                fail("bench/run " + name + " did not finish in " + TIMEOUT + " in smoke mode\n--- stdout\n" + out.getNow("")
                        + "--- stderr\n" + tail(err.getNow(""), 4000));
            }
            return new Result(p.exitValue(), out.join(), err.join());
        } catch (IOException e) {
            throw new UncheckedIOException("could not run bench/run " + name, e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AssertionError("interrupted", e);
        }
    }

    private static String read(InputStream in) {
        try {
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static String tail(String s, int max) {
        return s.length() <= max ? s : "..." + s.substring(s.length() - max);
    }

    private static String lastLine(String s) {
        String[] lines = s.strip().split("\n");
        return lines[lines.length - 1];
    }
}
