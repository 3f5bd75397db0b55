package dev.kiln.agent.schedule;

import java.time.Instant;

/**
 * A schedule and how its runs went.
 *
 * @param spec         what it asks for
 * @param setAt        when it was set (the anchor of a schedule without {@code at})
 * @param nextRun      when it runs next
 * @param lastRun      when it last ran, or null
 * @param lastOk       whether the last run made a snapshot
 * @param lastResult   what the last run did, or why it failed; empty before the first run
 * @param lastSnapshot the newest snapshot a run of it made, or empty
 * @param failures     failed runs since the last success
 */
public record ScheduleState(ScheduleSpec spec, Instant setAt, Instant nextRun, Instant lastRun, boolean lastOk,
                            String lastResult, String lastSnapshot, int failures) {

    public ScheduleState {
        lastResult = lastResult == null ? "" : lastResult;
        lastSnapshot = lastSnapshot == null ? "" : lastSnapshot;
    }

    /** A schedule just set, not run yet. */
    static ScheduleState fresh(ScheduleSpec spec, Instant now) {
        return new ScheduleState(spec, now, Clockwork.next(spec, now, now), null, false, "", "", 0);
    }

    ScheduleState withNextRun(Instant next) {
        return new ScheduleState(spec, setAt, next, lastRun, lastOk, lastResult, lastSnapshot, failures);
    }

    ScheduleState succeeded(Instant at, String snapshot, String result, Instant next) {
        return new ScheduleState(spec, setAt, next, at, true, result, snapshot, 0);
    }

    ScheduleState failed(Instant at, String result, Instant next) {
        return new ScheduleState(spec, setAt, next, at, false, result, lastSnapshot, failures + 1);
    }

    /** The same runs under a replaced spec (a repeated SetSchedule keeps its history). */
    ScheduleState respecified(ScheduleSpec newSpec, Instant now) {
        if (newSpec.equals(spec)) {
            return this;
        }
        return new ScheduleState(newSpec, now, Clockwork.next(newSpec, now, now), lastRun, lastOk, lastResult, lastSnapshot,
                failures);
    }
}
