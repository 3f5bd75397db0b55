package dev.kiln.agent.volume;

import java.time.Duration;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;

/** Runs a task after a delay, cancellably: how freeze leases end. Tests replace it. */
public interface LeaseTimer {

    /**
     * Schedules {@code task} after {@code delay}.
     *
     * @return cancels the task if it has not run yet
     */
    Runnable schedule(Runnable task, Duration delay);

    /** A timer on a scheduled executor. */
    static LeaseTimer of(ScheduledExecutorService executor) {
        return (task, delay) -> {
            ScheduledFuture<?> f = executor.schedule(task, delay.toNanos(), TimeUnit.NANOSECONDS);
            return () -> f.cancel(false);
        };
    }
}
