package dev.kiln.controller.fleet;

import dev.kiln.controller.ExitCodes;
import dev.kiln.controller.KilnException;

import java.time.Duration;
import java.time.Instant;
import java.util.Optional;
import java.util.function.Consumer;
import java.util.function.Function;
import java.util.function.Supplier;

/**
 * Waits for one snapshot to complete by describing it alone, with a bounded poll that backs off
 * (2 s, growing by half up to 30 s) until a deadline. A snapshot EC2 does not know yet is asked
 * again for a while ({@link #NOT_FOUND_GRACE}): EC2's API is eventually consistent, and a snapshot
 * may be {@code NotFound} for a moment just after CreateSnapshot returned its id.
 *
 * <p>The SDK's {@code Ec2Waiter.waitUntilSnapshotCompleted} cannot take its place: its acceptors
 * end the wait on the first {@code InvalidSnapshot.NotFound} (no grace), it reports only the
 * final response (no narration of each state and progress), it serves EC2 alone (this wait also
 * serves the local provider), and it sleeps on the real clock (the tests use virtual time).
 */
public final class SnapshotWait {

    /** How long a just-created snapshot may stay unknown before the wait gives up on it. */
    public static final Duration NOT_FOUND_GRACE = Duration.ofMinutes(2);

    static final Duration FIRST_DELAY = Duration.ofSeconds(2);
    static final Duration MAX_DELAY = Duration.ofSeconds(30);

    /** How the wait passes time; tests pass a virtual one. */
    public interface Sleeper {
        void sleep(Duration d) throws InterruptedException;
    }

    private final Function<String, Optional<FleetSnapshot>> describe;
    private final Sleeper sleeper;
    private final Supplier<Instant> clock;

    /**
     * @param describe one snapshot by id as it is now, empty when unknown ({@link Fleet#snapshot})
     * @param sleeper  how to pause between polls
     * @param clock    the current time
     */
    public SnapshotWait(Function<String, Optional<FleetSnapshot>> describe, Sleeper sleeper, Supplier<Instant> clock) {
        this.describe = describe;
        this.sleeper = sleeper;
        this.clock = clock;
    }

    /** A wait on a fleet, in real time. */
    public static SnapshotWait of(Fleet fleet) {
        return new SnapshotWait(fleet::snapshot, d -> Thread.sleep(d.toMillis()), Instant::now);
    }

    /**
     * Polls until the snapshot completes.
     *
     * @param onChange told of each new state and progress (for narration)
     * @return the completed snapshot
     * @throws KilnException FAILURE when it ends in error or the wait is interrupted; TIMEOUT after
     *                       {@code timeout}; NOT_FOUND when EC2 does not know it after the grace, or
     *                       no longer knows it (deleted meanwhile)
     */
    public FleetSnapshot await(String id, Duration timeout, Consumer<FleetSnapshot> onChange) {
        Instant start = clock.get();
        Instant giveUp = start.plus(timeout);
        Duration delay = FIRST_DELAY;
        String last = "";
        boolean seen = false;
        while (true) {
            Optional<FleetSnapshot> now = describe.apply(id);
            if (now.isEmpty()) {
                if (seen || !clock.get().isBefore(start.plus(NOT_FOUND_GRACE))) {
                    throw new KilnException(ExitCodes.NOT_FOUND, "snapshot " + id + (seen ? " disappeared while waiting for it"
                            : " is still unknown to EC2 " + NOT_FOUND_GRACE.toSeconds() + "s after it was created")
                            + "; `kiln snapshots` shows what exists");
                }
            } else {
                seen = true;
                FleetSnapshot s = now.get();
                String state = s.state() + " " + s.progress();
                if (!state.equals(last)) {
                    onChange.accept(s);
                    last = state;
                }
                if (s.state().equals("completed")) {
                    return s;
                }
                if (s.state().equals("error")) {
                    throw new KilnException(ExitCodes.FAILURE, "snapshot " + id + " failed (state error); take another");
                }
            }
            if (!clock.get().isBefore(giveUp)) {
                throw new KilnException(ExitCodes.TIMEOUT, "snapshot " + id + " is still " + (last.isEmpty() ? "unknown" : last)
                        + " after " + timeout.toSeconds() + "s; it goes on without kiln (kiln snapshots shows it)");
            }
            try {
                Duration left = Duration.between(clock.get(), giveUp);
                sleeper.sleep(delay.compareTo(left) < 0 ? delay : left);
            } catch (InterruptedException e) {
                // Not "completed": the caller must not take the snapshot for done.
                Thread.currentThread().interrupt();
                throw new KilnException(ExitCodes.FAILURE, "interrupted while waiting for snapshot " + id + " (" + last
                        + "); it goes on without kiln (kiln snapshots shows it)", e);
            }
            delay = Duration.ofMillis(Math.min(MAX_DELAY.toMillis(), delay.toMillis() * 3 / 2));
        }
    }
}
