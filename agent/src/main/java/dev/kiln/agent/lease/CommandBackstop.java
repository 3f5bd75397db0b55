package dev.kiln.agent.lease;

import dev.kiln.os.OsCommand;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.io.InterruptedIOException;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.List;

/**
 * Arms the backstop through a program of the operator's: it is run with the backstop time
 * (ISO-8601, UTC) as its one argument, e.g. a script that calls {@code shutdown} or a site's own
 * scheduler. Also how tests observe the backstop without systemd as PID 1.
 */
public final class CommandBackstop implements Backstop {

    private static final Logger LOG = LoggerFactory.getLogger(CommandBackstop.class);
    private static final Duration LIMIT = Duration.ofSeconds(30);
    private final Path program;

    public CommandBackstop(Path program) {
        this.program = program;
    }

    @Override
    public void arm(Instant at) {
        try {
            OsCommand.Result r = OsCommand.run(LIMIT, List.of(program.toString(), at.toString()));
            if (!r.ok()) {
                LOG.error("backstop command {} failed for {}: {}", program, at, r.said());
                return;
            }
            LOG.info("backstop armed: {} {}", program, at);
        } catch (InterruptedIOException e) {
            // the agent is stopping
        } catch (IOException e) {
            LOG.error("cannot run backstop command {}: {}", program, e.toString());
        }
    }

    @Override
    public String describe() {
        return "command " + program;
    }
}
