package dev.kiln.agent.service;

import java.time.Duration;

/**
 * How services are restarted and how much of their output is kept.
 *
 * @param firstBackoff the wait before the first restart; it doubles at each exit in a row
 * @param maxBackoff   the longest wait between restarts
 * @param fastRun      a run shorter than this is a fast failure; a longer one resets the backoff
 * @param fastFailures this many fast failures in a row and the service is given up (FAILED)
 * @param logCap       the most bytes of a service's log kept on disk
 * @param probeTimeout how long the check of a service's port may wait for a TCP connection
 */
public record ServicePolicy(Duration firstBackoff, Duration maxBackoff, Duration fastRun, int fastFailures,
                            long logCap, Duration probeTimeout) {

    /** The agent's policy (docs/agent.md states these numbers). */
    public static final ServicePolicy DEFAULT = new ServicePolicy(Duration.ofSeconds(1), Duration.ofSeconds(60),
            Duration.ofSeconds(10), 5, 10L * 1024 * 1024, Duration.ofMillis(200));

    /** The wait after {@code exitsInARow} exits in a row (1: the first backoff). */
    Duration backoff(int exitsInARow) {
        Duration d = firstBackoff;
        for (int i = 1; i < exitsInARow && d.compareTo(maxBackoff) < 0; i++) {
            d = d.multipliedBy(2);
        }
        return d.compareTo(maxBackoff) > 0 ? maxBackoff : d;
    }
}
