package dev.kiln.agent.schedule;

import java.time.Duration;
import java.time.Instant;
import java.time.LocalTime;
import java.time.ZoneOffset;

/** When a schedule runs next, and how long a failed run waits before it is tried again. */
final class Clockwork {

    /** The longest wait between two tries of a failing schedule. */
    static final Duration MAX_RETRY = Duration.ofHours(1);

    private Clockwork() {
    }

    /**
     * The first run time after {@code after}: with {@code at}, on the grid of {@code every}
     * through that time of day (UTC); without, on the grid through {@code setAt}.
     */
    static Instant next(ScheduleSpec spec, Instant setAt, Instant after) {
        LocalTime at = spec.atTime();
        Instant anchor = at == null ? setAt
                : after.atOffset(ZoneOffset.UTC).toLocalDate().atTime(at).toInstant(ZoneOffset.UTC);
        long every = spec.every().toMillis();
        long delta = after.toEpochMilli() - anchor.toEpochMilli();
        // The smallest k with anchor + k * every > after (k may be negative for an anchor later today).
        long k = Math.floorDiv(delta, every) + 1;
        return anchor.plusMillis(k * every);
    }

    /**
     * When a failed run is tried again: {@code base} doubled with each failure in a row, at most
     * {@link #MAX_RETRY}, and never later than the regular next run.
     */
    static Instant retry(ScheduleSpec spec, Instant setAt, Instant now, int failures, Duration base) {
        Duration wait = base;
        for (int i = 1; i < failures && wait.compareTo(MAX_RETRY) < 0; i++) {
            wait = wait.multipliedBy(2);
        }
        if (wait.compareTo(MAX_RETRY) > 0) {
            wait = MAX_RETRY;
        }
        Instant retry = now.plus(wait);
        Instant regular = next(spec, setAt, now);
        return retry.isBefore(regular) ? retry : regular;
    }
}
