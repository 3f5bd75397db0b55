package dev.kiln.agent.lease;

import java.time.Duration;

/**
 * A part of the agent that has something to do when the instance ends (close SSH sessions,
 * unmount volumes). Drain calls participants in {@link #order()} after builds are stopped and
 * logs flushed, each with the time budget left.
 */
public interface DrainParticipant {

    /** What this step is, for the log ("close SSH sessions"). */
    String step();

    /** Lower runs first: SSH sessions (40) close before volumes unmount (50). */
    default int order() {
        return 50;
    }

    /** Does the step within {@code budget}; returns a one-line result for the log. */
    String drain(Duration budget) throws Exception;
}
