package dev.kiln.controller.build;

import dev.kiln.proto.agent.v1.Build;

import java.io.PrintStream;
import java.util.function.Supplier;

/**
 * Shows a build's progress (tup's commands done of total) while its log streams: a bar redrawn in
 * place on a terminal, or a plain line per change otherwise. Polls the build once a second.
 */
public final class ProgressDisplay implements AutoCloseable {

    private final PrintStream err;
    private final boolean terminal;
    private final Supplier<Build> poll;
    private final Thread thread;
    private volatile boolean stop;
    private long lastDone = -1;
    private long lastTotal = -1;
    private boolean drawn;

    public ProgressDisplay(PrintStream err, boolean terminal, Supplier<Build> poll) {
        this.err = err;
        this.terminal = terminal;
        this.poll = poll;
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
