package dev.kiln.controller.build;

import dev.kiln.proto.agent.v1.Build;

import java.io.PrintStream;
import java.time.Duration;
import java.util.function.LongSupplier;
import java.util.function.Supplier;

/**
 * Shows a build's progress (tup's commands done of total) while its log streams: a bar redrawn in
 * place on a terminal, or otherwise a plain line when it changed, at most every {@link #LINE_EVERY}
 * (a log file gets a few lines per build, not one a second). Polls the build once a second.
 */
public final class ProgressDisplay implements AutoCloseable {

    /** The shortest time between two progress lines when the output is not a terminal. */
    public static final Duration LINE_EVERY = Duration.ofSeconds(5);

    private final PrintStream err;
    private final boolean terminal;
    private final Supplier<Build> poll;
    private final LongSupplier nanoClock;
    private final Thread thread;
    private volatile boolean stop;
    private long lastDone = -1;
    private long lastTotal = -1;
    private boolean drawn;
    private boolean printed;
    private long printedAt;

    public ProgressDisplay(PrintStream err, boolean terminal, Supplier<Build> poll) {
        this(err, terminal, poll, System::nanoTime);
    }

    ProgressDisplay(PrintStream err, boolean terminal, Supplier<Build> poll, LongSupplier nanoClock) {
        this.err = err;
        this.terminal = terminal;
        this.poll = poll;
        this.nanoClock = nanoClock;
        this.thread = new Thread(this::run, "kiln-progress");
        this.thread.setDaemon(true);
    }

    public ProgressDisplay start() {
        thread.start();
        return this;
    }

    private void run() {
        while (!stop) {
            try {
                Build b = poll.get();
                show(b.getProgress().getDone(), b.getProgress().getTotal());
            } catch (RuntimeException e) {
                // progress is a nicety; the log stream reports real trouble
            }
            try {
                Thread.sleep(1000);
            } catch (InterruptedException e) {
                return;
            }
        }
    }

    synchronized void show(long done, long total) {
        if (stop || total <= 0 || (done == lastDone && total == lastTotal)) {
            return;
        }
        if (!terminal) {
            long now = nanoClock.getAsLong();
            if (printed && now - printedAt < LINE_EVERY.toNanos()) {
                return; // a later poll prints the newer count, if it is still due
            }
            printed = true;
            printedAt = now;
        }
        lastDone = done;
        lastTotal = total;
        if (terminal) {
            int width = 30;
            int filled = (int) (width * done / total);
            err.print("\r[" + "#".repeat(filled) + ".".repeat(width - filled) + "] " + done + "/" + total + " commands");
            drawn = true;
        } else {
            err.println("kiln: progress " + done + "/" + total + " commands");
        }
        err.flush();
    }

    @Override
    public synchronized void close() {
        stop = true;
        thread.interrupt();
        if (drawn) {
            err.println();
        }
    }
}
