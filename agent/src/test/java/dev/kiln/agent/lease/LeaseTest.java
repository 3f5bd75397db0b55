package dev.kiln.agent.lease;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class LeaseTest {

    static final Instant T0 = Instant.parse("2026-11-22T10:00:00Z");

    @TempDir
    Path dir;

    MutableClock clock = new MutableClock(T0);

    Lease lease(Duration ttl) throws Exception {
        return Lease.load(dir.resolve("lease.properties"), clock, ttl, Duration.ofHours(12));
    }

    @Test
    void startsFromTheTtlAndCapsAtTheMaximumLifetime() throws Exception {
        Lease l = lease(Duration.ofHours(2));
        assertEquals(T0.plus(Duration.ofHours(2)), l.deadline().orElseThrow());
        assertEquals(T0.plus(Duration.ofHours(12)), l.maxDeadline());
        assertEquals(Duration.ofHours(2), l.remaining().orElseThrow());
        assertFalse(l.expired());
        clock.advance(Duration.ofHours(2));
        assertTrue(l.expired());
        assertEquals(Duration.ZERO, l.remaining().orElseThrow());
    }

    @Test
    void aRestartKeepsTheDeadlineInsteadOfStartingAgain() throws Exception {
        lease(Duration.ofHours(2)).extend(Duration.ofMinutes(30), null, "r1");
        clock.advance(Duration.ofHours(1)); // the agent restarts an hour later, same settings
        Lease again = lease(Duration.ofHours(2));
        assertEquals(T0.plus(Duration.ofMinutes(150)), again.deadline().orElseThrow());
        assertEquals(T0, again.start());
        assertEquals(T0.plus(Duration.ofMinutes(150)), again.extend(Duration.ofHours(1), null, "r1"),
                "the request id is remembered across the restart");
    }

    @Test
    void extendsByADurationOrToATimeButNeverEarlier() throws Exception {
        Lease l = lease(Duration.ofHours(2));
        assertEquals(T0.plus(Duration.ofHours(3)), l.extend(Duration.ofHours(1), null, "a"));
        assertEquals(T0.plus(Duration.ofHours(5)), l.extend(null, T0.plus(Duration.ofHours(5)), "b"));
        assertEquals(T0.plus(Duration.ofHours(5)), l.extend(null, T0.plus(Duration.ofHours(4)), "c"), "never earlier");
        assertThrows(IllegalArgumentException.class, () -> l.extend(Duration.ofMinutes(-5), null, "d"));
    }

    @Test
    void repeatingARequestIdDoesNotExtendTwice() throws Exception {
        Lease l = lease(Duration.ofHours(2));
        Instant first = l.extend(Duration.ofHours(1), null, "same");
        assertEquals(first, l.extend(Duration.ofHours(1), null, "same"));
        assertEquals(T0.plus(Duration.ofHours(3)), l.deadline().orElseThrow());
    }

    @Test
    void refusesToExtendPastTheMaximumLifetimeSayingTheCap() throws Exception {
        Lease l = lease(Duration.ofHours(2));
        LeaseException e = assertThrows(LeaseException.class, () -> l.extend(Duration.ofHours(11), null, "x"));
        assertEquals("cannot extend the lease to 2026-11-22T23:00:00Z: the maximum lifetime ends at 2026-11-22T22:00:00Z "
                + "(kiln.lease.max-lifetime from the first start at 2026-11-22T10:00:00Z); extend to at most "
                + "2026-11-22T22:00:00Z, or launch a new instance", e.getMessage());
        assertEquals(T0.plus(Duration.ofHours(2)), l.deadline().orElseThrow(), "unchanged");
    }

    @Test
    void aLeaseWithoutDeadlineCannotBeExtended() throws Exception {
        Lease l = lease(null);
        assertTrue(l.deadline().isEmpty());
        assertFalse(l.expired());
        assertThrows(LeaseException.class, () -> l.extend(Duration.ofHours(1), null, "x"));
    }
}
