package dev.kiln.agent.lease;

import dev.kiln.agent.build.BuildManager;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;

/**
 * Keeps the instance's lease: watches the deadline, EC2's interruption notices and idleness, and
 * when one of them says so, drains in order within a time budget (refuse new builds, cancel
 * running ones, flush logs, the participants such as SSH and volumes, then power off). Every step
 * goes to the agent log. All timing comes from an injectable clock and {@link #tick()}, so tests
 * drive it in seconds.
 */
public final class LeaseKeeper implements AutoCloseable {

    private static final Logger LOG = LoggerFactory.getLogger(LeaseKeeper.class);
    /** How long before a drain must start, for a scheduled stop, the agent begins it (besides an IMDS poll). */
    private static final Duration EVENT_MARGIN = Duration.ofMinutes(1);

    /** Overall state. */
    public enum State { READY, DRAINING, POWERING_OFF }

    /** One step of a drain as it happened. */
    public record Step(Instant at, String what) {
    }

    private final Lease lease;
    private final Clock clock;
    private final BuildManager builds;
    private final List<DrainParticipant> participants;
    private final List<BusySource> busySources;
    private final NoticeSource notices;
    private final Backstop backstop;
    private final PowerControl power;
    private final Duration backstopGrace;
    private final Duration drainBudget;
    private final Duration cancelGrace;
    private final Duration idleTimeout;
    private final boolean drainOnRebalance;
    private final Duration imdsPoll;
    private final ScheduledExecutorService timer = Executors.newSingleThreadScheduledExecutor(r -> {
        Thread t = new Thread(r, "kiln-lease");
        t.setDaemon(true);
        return t;
    });

    private volatile State state = State.READY;
    private EndReason endReason;
    private Instant drainingSince;
    private Instant idleSince;
    private Instant lastNoticePoll;
    private boolean rebalanceWarned;
    private volatile List<String> upcomingEvents = List.of();
    private volatile Instant scheduledEnd;
    private final java.util.Set<String> announced = new java.util.HashSet<>();
    private final List<Step> timeline = new ArrayList<>();
    private volatile boolean agentLogEnded;
    private final java.util.concurrent.atomic.AtomicInteger agentLogFollowers = new java.util.concurrent.atomic.AtomicInteger();

    public LeaseKeeper(Lease lease, Clock clock, BuildManager builds, List<DrainParticipant> participants,
                       List<BusySource> busySources, NoticeSource notices, Backstop backstop, PowerControl power,
                       Duration backstopGrace, Duration drainBudget, Duration cancelGrace, Duration idleTimeout,
                       boolean drainOnRebalance, Duration imdsPoll) {
        this.lease = lease;
        this.clock = clock;
        this.builds = builds;
        this.participants = participants.stream().sorted(Comparator.comparingInt(DrainParticipant::order)).toList();
        this.busySources = busySources;
        this.notices = notices;
        this.backstop = backstop;
        this.power = power;
        this.backstopGrace = backstopGrace;
        this.drainBudget = drainBudget;
        this.cancelGrace = cancelGrace;
        this.idleTimeout = idleTimeout;
        this.drainOnRebalance = drainOnRebalance;
        this.imdsPoll = imdsPoll;
    }

    /** Arms the backstop and starts watching (once a second). */
    public void start() {
        LOG.info("lease: {}; backstop: {}; power-off: {}", describeLease(), backstop.describe(), power.describe());
        lease.deadline().ifPresent(d -> backstop.arm(d.plus(backstopGrace)));
        timer.scheduleWithFixedDelay(() -> {
            try {
                tick();
            } catch (RuntimeException e) {
                LOG.error("lease watchdog: {}", e.toString());
            }
        }, 1, 1, TimeUnit.SECONDS);
    }

    public Lease lease() {
        return lease;
    }

    public State state() {
        return state;
    }

    /** Why the instance will end (the reason of a drain in progress, else its deadline, else none). */
    public synchronized Optional<EndReason> endReason() {
        if (endReason != null) {
            return Optional.of(endReason);
        }
        Instant event = scheduledEnd;
        if (event != null && (lease.deadline().isEmpty() || event.isBefore(lease.deadline().get()))) {
            return Optional.of(EndReason.SCHEDULED_EVENT);
        }
        if (lease.deadline().isPresent()) {
            return Optional.of(EndReason.DEADLINE);
        }
        return idleTimeout == null ? Optional.empty() : Optional.of(EndReason.IDLE);
    }

    public synchronized Optional<Instant> drainingSince() {
        return Optional.ofNullable(drainingSince);
    }

    /** What keeps the agent from being idle now. */
    public List<String> busyReasons() {
        List<String> reasons = new ArrayList<>();
        busySources.forEach(s -> reasons.addAll(s.busyReasons()));
        return reasons;
    }

    /**
     * EC2's scheduled events for this instance that the agent is not acting on yet, one line each
     * for Status: a reboot or system maintenance (which the instance survives), or a stop or
     * retirement whose NotBefore is still further away than the drain needs.
     */
    public List<String> upcomingEvents() {
        return upcomingEvents;
    }

    /** The steps of the drain so far. */
    public synchronized List<Step> timeline() {
        return List.copyOf(timeline);
    }

    /** Extends the lease and re-arms the backstop. */
    public Instant extend(Duration by, Instant until, String requestId) throws IOException {
        if (state != State.READY) {
            throw new IllegalStateException("the agent is already ending (" + endReason + "); it cannot be extended");
        }
        Instant before = lease.deadline().orElse(null);
        Instant after = lease.extend(by, until, requestId);
        if (!after.equals(before)) {
            LOG.info("lease extended: deadline {} -> {}", before, after);
            backstop.arm(after.plus(backstopGrace));
        }
        return after;
    }

    /** Begins draining now (a Shutdown request); repeating it returns the first drain's start. */
    public Instant shutdown(String why) {
        return drain(EndReason.SHUTDOWN_REQUESTED, why == null || why.isEmpty() ? "shutdown requested" : why, drainBudget);
    }

    /** One look at the deadline, the notices and idleness. */
    public void tick() {
        if (state != State.READY) {
            return;
        }
        Instant now = clock.instant();
        if (lease.expired()) {
            drain(EndReason.DEADLINE, "lease deadline " + lease.deadline().orElseThrow() + " reached", drainBudget);
            return;
        }
        if (lastNoticePoll == null || !now.isBefore(lastNoticePoll.plus(imdsPoll))) {
            lastNoticePoll = now;
            try {
                List<Notice> seen = notices.poll();
                watchScheduledEvents(now, seen);
                for (Notice n : seen) {
                    if (n.reason() == EndReason.SCHEDULED_EVENT && !actsNow(now, n)) {
                        continue;
                    }
                    if (n.reason() == EndReason.REBALANCE_RECOMMENDATION && !drainOnRebalance) {
                        if (!rebalanceWarned) {
                            LOG.warn("EC2 recommends rebalancing this instance ({}); kiln.lease.rebalance is warn, so it keeps running",
                                    n.detail());
                            rebalanceWarned = true;
                        }
                        continue;
                    }
                    Duration budget = drainBudget;
                    if (n.by() != null) {
                        // Leave a margin before EC2 acts: a spot notice gives two minutes in all.
                        Duration until = Duration.between(now, n.by()).minusSeconds(10);
                        if (until.compareTo(budget) < 0) {
                            budget = until.isNegative() ? Duration.ofSeconds(5) : until;
                        }
                    }
                    drain(n.reason(), n.detail(), budget);
                    return;
                }
            } catch (Exception e) {
                LOG.warn("cannot read interruption notices from IMDS: {}", e.toString());
            }
        }
        if (idleTimeout != null) {
            List<String> busy = busyReasons();
            synchronized (this) {
                if (!busy.isEmpty()) {
                    idleSince = null;
                } else if (idleSince == null) {
                    idleSince = now;
                    LOG.info("idle: nothing to do; ending in {} unless something starts", idleTimeout);
                } else if (!now.isBefore(idleSince.plus(idleTimeout))) {
                    drain(EndReason.IDLE, "idle since " + idleSince + " (kiln.lease.idle-timeout " + idleTimeout + ")", drainBudget);
                }
            }
        }
    }

    /**
     * Whether a scheduled event ends the instance now: a stop or retirement once its NotBefore is
     * within the drain budget plus a margin (EC2 gives days of notice; draining at once would throw
     * those days away); a reboot or system maintenance never, since the instance survives it.
     */
    private boolean actsNow(Instant now, Notice n) {
        if (n.keepsInstance()) {
            return false;
        }
        return n.by() == null || !now.isBefore(drainFrom(n.by()));
    }

    /** When the drain for an event at {@code at} begins: the budget, a margin and one IMDS poll ahead of it. */
    private Instant drainFrom(Instant at) {
        return at.minus(drainBudget).minus(EVENT_MARGIN).minus(imdsPoll);
    }

    /** Keeps the Status lines (and the end reason) for the scheduled events not acted on yet. */
    private void watchScheduledEvents(Instant now, List<Notice> seen) {
        List<String> lines = new ArrayList<>();
        Instant end = null;
        for (Notice n : seen) {
            if (n.reason() != EndReason.SCHEDULED_EVENT || actsNow(now, n)) {
                continue;
            }
            String line;
            if (n.keepsInstance()) {
                line = "EC2 scheduled " + n.event() + " at " + n.by() + ": the instance " + (n.event().endsWith("-reboot")
                        ? "reboots and keeps its volumes and lease" : "keeps running") + "; the agent does not end it";
            } else {
                line = "EC2 scheduled " + n.event() + " at " + n.by() + ": the agent drains and ends the instance from "
                        + drainFrom(n.by()) + " unless its lease ends it first";
                end = end == null || n.by().isBefore(end) ? n.by() : end;
            }
            lines.add(line);
            synchronized (this) {
                if (announced.add(line)) {
                    LOG.warn("{} ({})", line, n.detail());
                }
            }
        }
        upcomingEvents = List.copyOf(lines);
        scheduledEnd = end;
    }

    private synchronized Instant drain(EndReason reason, String why, Duration budget) {
        if (state != State.READY) {
            return drainingSince;
        }
        state = State.DRAINING;
        endReason = reason;
        drainingSince = clock.instant();
        Instant giveUp = drainingSince.plus(budget);
        step("draining: " + reason + " (" + why + "); budget " + budget.toSeconds() + "s");
        Thread t = new Thread(() -> runDrain(giveUp), "kiln-drain");
        t.setDaemon(false);
        t.start();
        return drainingSince;
    }

    private void runDrain(Instant giveUp) {
        try {
            builds.refuseNewBuilds();
            step("refusing new builds");
            for (String id : builds.activeIds()) {
                Duration left = left(giveUp);
                Duration grace = cancelGrace.compareTo(left.dividedBy(2)) < 0 ? cancelGrace : left.dividedBy(2);
                try {
                    var r = builds.cancel(id, grace.isZero() ? Duration.ofSeconds(1) : grace);
                    step("cancelled build " + id + ": " + r.state().name().toLowerCase() + ", log " + r.logSize() + " bytes on disk");
                } catch (Exception e) {
                    step("could not cancel build " + id + ": " + e.getMessage());
                }
            }
            step("logs flushed");
            for (DrainParticipant p : participants) {
                try {
                    step(p.step() + ": " + p.drain(left(giveUp)));
                } catch (Exception e) {
                    step(p.step() + " failed: " + e.getMessage());
                }
            }
        } finally {
            synchronized (this) {
                state = State.POWERING_OFF;
            }
            step("powering off (" + power.describe() + ")");
            agentLogEnded = true; // only after the last line is on disk, so followers read it
            awaitAgentLogFollowers(Duration.ofSeconds(3));
            power.powerOff();
        }
    }

    /** True once the drain's last line is in the agent log: a follower that has read to the end is done. */
    public boolean agentLogEnded() {
        return agentLogEnded;
    }

    /** Counts a client following the agent log, which power-off waits for (briefly). */
    public void agentLogFollowerOpened() {
        agentLogFollowers.incrementAndGet();
    }

    public void agentLogFollowerClosed() {
        agentLogFollowers.decrementAndGet();
    }

    private void awaitAgentLogFollowers(Duration atMost) {
        long end = System.nanoTime() + atMost.toNanos();
        try {
            while (agentLogFollowers.get() > 0 && System.nanoTime() < end) {
                Thread.sleep(20);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    private Duration left(Instant giveUp) {
        Duration d = Duration.between(clock.instant(), giveUp);
        return d.isNegative() ? Duration.ZERO : d;
    }

    private void step(String what) {
        Instant at = clock.instant();
        synchronized (this) {
            timeline.add(new Step(at, what));
        }
        String offset = drainingSince == null ? "" : String.format(" (+%.1fs)",
                Duration.between(drainingSince, at).toMillis() / 1000.0);
        LOG.info("{}{}", what, offset);
    }

    private String describeLease() {
        if (lease.deadline().isEmpty()) {
            return "no deadline (forever)";
        }
        return "deadline " + lease.deadline().get() + " (max " + lease.maxDeadline() + ")"
                + (idleTimeout == null ? "" : ", idle timeout " + idleTimeout);
    }

    @Override
    public void close() {
        timer.shutdownNow();
    }
}
