package dev.kiln.controller.fleet;

import dev.kiln.controller.ExitCodes;
import dev.kiln.controller.KilnException;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.time.Instant;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.List;
import java.util.Optional;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Waiting for one snapshot, in virtual time: one describe per poll, backing off, NotFound retried at first. */
class SnapshotWaitTest {

    Instant now = Instant.parse("2026-12-01T00:00:00Z");
    final List<Duration> sleeps = new ArrayList<>();
    final List<String> described = new ArrayList<>();

    SnapshotWait waitOn(Deque<Optional<FleetSnapshot>> answers) {
        return new SnapshotWait(id -> {
            described.add(id);
            return answers.size() > 1 ? answers.poll() : answers.peek();
        }, d -> {
            sleeps.add(d);
            now = now.plus(d);
        }, () -> now);
    }

    static Optional<FleetSnapshot> state(String state, String progress) {
        return Optional.of(new FleetSnapshot("snap-1", "builds", state, progress, 1, Instant.EPOCH, "i-0", "", true, "music"));
    }

    @Test
    void aSnapshotNotFoundJustAfterCreateSnapshotIsAskedAgainUntilItCompletes() {
        // EC2's API is eventually consistent: the id CreateSnapshot returned may be NotFound for a moment.
        Deque<Optional<FleetSnapshot>> answers = new ArrayDeque<>(List.of(Optional.empty(), Optional.empty(),
                state("pending", "10%"), state("pending", "10%"), state("pending", "80%"), state("completed", "100%")));
        List<String> narrated = new ArrayList<>();
        FleetSnapshot done = waitOn(answers).await("snap-1", Duration.ofHours(2), s -> narrated.add(s.state() + " " + s.progress()));
        assertEquals("completed", done.state());
        assertEquals(List.of("pending 10%", "pending 80%", "completed 100%"), narrated, "each change once");
        assertEquals(List.of("snap-1", "snap-1", "snap-1", "snap-1", "snap-1", "snap-1"), described, "only the one snapshot");
        assertEquals(List.of(Duration.ofSeconds(2), Duration.ofSeconds(3), Duration.ofMillis(4500), Duration.ofMillis(6750),
                Duration.ofMillis(10125)), sleeps, "backing off");
    }

    @Test
    void theBackoffIsCappedAndTheWaitEndsAtItsTimeout() {
        KilnException e = assertThrows(KilnException.class, () -> waitOn(new ArrayDeque<>(List.of(state("pending", "5%"))))
                .await("snap-1", Duration.ofMinutes(10), s -> { }));
        assertEquals(ExitCodes.TIMEOUT, e.exitCode());
        assertTrue(e.getMessage().startsWith("snapshot snap-1 is still pending 5% after 600s"), e.getMessage());
        assertTrue(sleeps.stream().allMatch(d -> d.compareTo(Duration.ofSeconds(30)) <= 0), sleeps.toString());
        assertEquals(Duration.ofMinutes(10), sleeps.stream().reduce(Duration.ZERO, Duration::plus), "not a moment past it");
    }

    @Test
    void aSnapshotStillUnknownAfterTheGraceOrGoneLaterOrInErrorFails() {
        KilnException unknown = assertThrows(KilnException.class, () -> waitOn(new ArrayDeque<>(List.of(Optional.empty())))
                .await("snap-1", Duration.ofHours(2), s -> { }));
        assertEquals(ExitCodes.NOT_FOUND, unknown.exitCode());
        assertTrue(unknown.getMessage().contains("still unknown to EC2 120s after it was created"), unknown.getMessage());

        KilnException gone = assertThrows(KilnException.class, () -> waitOn(new ArrayDeque<>(List.of(state("pending", "1%"),
                Optional.empty()))).await("snap-1", Duration.ofHours(2), s -> { }));
        assertEquals(ExitCodes.NOT_FOUND, gone.exitCode());
        assertTrue(gone.getMessage().contains("disappeared while waiting for it"), gone.getMessage());

        KilnException failed = assertThrows(KilnException.class, () -> waitOn(new ArrayDeque<>(List.of(state("error", "0%"))))
                .await("snap-1", Duration.ofHours(2), s -> { }));
        assertEquals(ExitCodes.FAILURE, failed.exitCode());
    }
}
