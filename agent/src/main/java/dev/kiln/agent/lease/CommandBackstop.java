package dev.kiln.agent.lease;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.file.Path;
import java.time.Instant;
import java.util.concurrent.TimeUnit;

/**
 * Arms the backstop through a program of the operator's: it is run with the backstop time
 * (ISO-8601, UTC) as its one argument, e.g. a script that calls {@code shutdown} or a site's own
 * scheduler. Also how tests observe the backstop without systemd as PID 1.
 */
public final class CommandBackstop implements Backstop {

    private static final Logger LOG = LoggerFactory.getLogger(CommandBackstop.class);
    private final Path program;

    public CommandBackstop(Path program) {
        this.program = program;
    }

    @Override
    public void arm(Instant at) {
        try {
            Process p = new ProcessBuilder(program.toString(), at.toString()).redirectErrorStream(true).start();
            String out = new String(p.getInputStream().readAllBytes()).strip();
            if (!p.waitFor(30, TimeUnit.SECONDS) || p.exitValue() != 0) {
                LOG.error("backstop command {} failed for {}: {}", program, at, out);
                return;
            }
            LOG.info("backstop armed: {} {}", program, at);
        } catch (IOException e) {
            LOG.error("cannot run backstop command {}: {}", program, e.toString());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    @Override
    public String describe() {
        return "command " + program;
    }
}
