package dev.kiln.agent.build;

import dev.kiln.agent.logs.LogChannel;
import dev.kiln.agent.logs.LogFile;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.concurrent.TimeUnit;

/** A build whose process (or set-up) is in progress: its open log, its process, and whether it is being stopped. */
final class RunningBuild {

    private static final Logger LOG = LoggerFactory.getLogger(RunningBuild.class);

    final LogFile log;
    volatile Process process;
    volatile boolean cancelRequested;
    volatile boolean interruptRequested;

    RunningBuild(LogFile log) {
        this.log = log;
    }

    /** Whether a cancel or an agent shutdown has asked this build to stop. */
    boolean stopRequested() {
        return cancelRequested || interruptRequested;
    }

    /** Writes a line of kiln's own to the build's log (on stderr). */
    void note(String text) {
        try {
            byte[] b = text.getBytes(StandardCharsets.UTF_8);
            log.append(LogChannel.STDERR, b, 0, b.length);
        } catch (IOException e) {
            LOG.warn("cannot write to a build log: {}", e.toString());
        }
    }

    /** TERM to the process group, then KILL after {@code grace}. */
    void stop(ProcessLauncher launcher, Duration grace) {
        Process p = process;
        if (p == null || !p.isAlive()) {
            return;
        }
        launcher.signalGroup(p.pid(), "TERM");
        try {
            if (!p.waitFor(grace.toMillis(), TimeUnit.MILLISECONDS)) {
                launcher.signalGroup(p.pid(), "KILL");
                p.waitFor(10, TimeUnit.SECONDS);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
