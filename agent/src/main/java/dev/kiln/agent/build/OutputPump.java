package dev.kiln.agent.build;

import dev.kiln.agent.logs.LogChannel;
import dev.kiln.agent.logs.LogFile;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Future;
import java.util.function.Consumer;

/**
 * Copies a build process's stdout and stderr into its log as the bytes arrive, and hands the
 * lines of stdout to a parser when one is given (tup's progress).
 */
final class OutputPump {

    private static final Logger LOG = LoggerFactory.getLogger(OutputPump.class);

    private OutputPump() {
    }

    /**
     * Pumps both streams until the process closes them: stderr on {@code pool}, stdout on the
     * calling thread.
     *
     * @param lines told of each line of stdout, or null to only log it
     */
    static void drain(Process p, LogFile log, Consumer<String> lines, ExecutorService pool) throws IOException {
        LineSplitter splitter = lines == null ? null : new LineSplitter(lines);
        Future<Void> stderr = pool.submit(() -> pump(p.getErrorStream(), LogChannel.STDERR, log, null));
        pump(p.getInputStream(), LogChannel.STDOUT, log, splitter);
        try {
            stderr.get();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted while waiting for the build", e);
        } catch (ExecutionException e) {
            throw new IOException("reading the build's stderr failed: " + e.getCause(), e.getCause());
        }
    }

    private static Void pump(InputStream in, LogChannel channel, LogFile log, LineSplitter lines) {
        // As large as a pipe's buffer (64 KiB on Linux): a busy build's output is taken in one
        // read, one write to the log and one wake-up of its followers, not four.
        byte[] buf = new byte[65536];
        try (in) {
            int n;
            while ((n = in.read(buf)) > 0) {
                log.append(channel, buf, 0, n);
                if (lines != null) {
                    lines.feed(buf, n);
                }
            }
        } catch (IOException e) {
            LOG.warn("lost output of a build: {}", e.toString());
        }
        return null;
    }

    /** Splits bytes into lines for progress parsing (bounded: very long lines are cut). */
    static final class LineSplitter {
        private final Consumer<String> sink;
        private final ByteArrayOutputStream line = new ByteArrayOutputStream();

        LineSplitter(Consumer<String> sink) {
            this.sink = sink;
        }

        void feed(byte[] b, int n) {
            int start = 0; // the current line's bytes in b: start..i
            for (int i = 0; i < n; i++) {
                if (b[i] == '\n' || b[i] == '\r') {
                    keep(b, start, i);
                    if (line.size() > 0) {
                        sink.accept(line.toString(StandardCharsets.UTF_8));
                        line.reset();
                    }
                    start = i + 1;
                }
            }
            keep(b, start, n);
        }

        /** Appends b[from..to) to the line, up to 4096 bytes in all (the rest is cut). */
        private void keep(byte[] b, int from, int to) {
            int len = Math.min(to - from, 4096 - line.size());
            if (len > 0) {
                line.write(b, from, len);
            }
        }
    }
}
