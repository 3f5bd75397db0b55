package dev.kiln.agent.lease;

import dev.kiln.agent.build.BuildManager;
import dev.kiln.agent.build.BuildRecord;
import dev.kiln.agent.build.BuildSpec;
import dev.kiln.agent.build.BuildState;
import dev.kiln.agent.build.BuildStore;
import dev.kiln.agent.build.BuildUser;
import dev.kiln.agent.build.OsProcessLauncher;
import dev.kiln.testkit.Prerequisites;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The lease's decisions with a hand-moved clock, real builds (real processes as the build user),
 * and recording stand-ins for the two mechanisms this machine cannot exercise for real: powering
 * the machine off and a systemd timer (systemd is not PID 1 here). The systemd mechanism's
 * commands are checked in SystemdBackstopTest.
 */
class LeaseKeeperTest {

    static final Instant T0 = Instant.parse("2026-11-22T10:00:00Z");

    @TempDir
    Path dir;

    MutableClock clock = new MutableClock(T0);
    BuildManager builds;
    Path tree;
    final List<Instant> armed = Collections.synchronizedList(new ArrayList<>());
    final CountDownLatch poweredOff = new CountDownLatch(1);
    final List<String> steps = Collections.synchronizedList(new ArrayList<>());
    List<Notice> notices = List.of();
    LeaseKeeper keeper;

    final Backstop backstop = new Backstop() {
        public void arm(Instant at) {
            armed.add(at);
        }

        public String describe() {
            return "recording";
        }
    };
    final PowerControl power = new PowerControl() {
        public void powerOff() {
            steps.add("power off");
            poweredOff.countDown();
        }

        public String describe() {
            return "recording";
        }
    };

    @BeforeEach
    void setUp() throws IOException {
        Prerequisites.requireCommand("setsid", "apt-get install util-linux");
        BuildUser user = BuildUser.resolve(null);
        tree = Files.createDirectories(dir.resolve("tree"));
        dev.kiln.agent.build.BuildUsers.giveTo(dir, user);
        dev.kiln.agent.build.BuildUsers.giveTo(tree, user);
        builds = new BuildManager(new BuildStore(dir.resolve("state")), new OsProcessLauncher(), clock,
                () -> user, new dev.kiln.agent.build.TupProfiles(null), Duration.ofSeconds(5));
    }

    @AfterEach
    void tearDown() {
        if (keeper != null) {
            keeper.close();
        }
        builds.close();
    }

    LeaseKeeper keeper(Duration ttl, Duration idle, boolean drainOnRebalance) throws IOException {
        Lease lease = Lease.load(dir.resolve("lease.properties"), clock, ttl, Duration.ofHours(12));
        DrainParticipant ssh = participant("close SSH sessions", 40);
        DrainParticipant volumes = participant("unmount volumes", 50);
        keeper = new LeaseKeeper(lease, clock, builds, List.of(volumes, ssh), List.of(builds), () -> notices,
                backstop, power, Duration.ofMinutes(10), Duration.ofSeconds(100), Duration.ofSeconds(5), idle,
                drainOnRebalance, Duration.ofSeconds(5));
        return keeper;
    }

    DrainParticipant participant(String name, int order) {
        return new DrainParticipant() {
            public String step() {
                return name;
            }

            public int order() {
                return order;
            }

            public String drain(Duration budget) {
                steps.add(name);
                return "done";
            }
        };
    }

    BuildRecord longBuild() throws Exception {
        BuildRecord r = builds.start(new BuildSpec(tree, false, List.of(), List.of(),
                List.of("sh", "-c", "echo working; sleep 300"), Map.of(), false, "", Map.of()));
        Path log = dir.resolve("state/builds").resolve(r.id()).resolve("log");
        for (int i = 0; i < 500 && (!Files.exists(log) || Files.size(log) == 0); i++) {
            Thread.sleep(10);
        }
        return r;
    }

    void awaitPowerOff() throws InterruptedException {
        assertTrue(poweredOff.await(60, TimeUnit.SECONDS), "powered off; steps so far: " + steps);
    }

    @Test
    void theDeadlineMidBuildDrainsInOrderAndPowersOff() throws Exception {
        keeper(Duration.ofHours(2), null, false).start();
        assertEquals(List.of(T0.plus(Duration.ofMinutes(130))), armed, "backstop at deadline + grace");
        BuildRecord build = longBuild();
        clock.advance(Duration.ofMinutes(119));
        keeper.tick();
        assertEquals(LeaseKeeper.State.READY, keeper.state());
        clock.advance(Duration.ofMinutes(1));
        keeper.tick();
        awaitPowerOff();
        assertEquals(List.of("close SSH sessions", "unmount volumes", "power off"), steps);
        BuildRecord after = builds.get(build.id());
        assertEquals(BuildState.CANCELLED, after.state());
        assertEquals("working\n", Files.readString(dir.resolve("state/builds").resolve(build.id()).resolve("log")));
        assertEquals(EndReason.DEADLINE, keeper.endReason().orElseThrow());
        List<String> timeline = keeper.timeline().stream().map(LeaseKeeper.Step::what).toList();
        assertTrue(timeline.get(0).startsWith("draining: DEADLINE"), timeline.toString());
        assertEquals("refusing new builds", timeline.get(1));
        assertTrue(timeline.get(2).startsWith("cancelled build " + build.id() + ": cancelled, log 8 bytes"), timeline.toString());
        assertEquals("logs flushed", timeline.get(3));
        assertEquals("powering off (recording)", timeline.get(timeline.size() - 1));
        assertFalse(builds.busyReasons().iterator().hasNext(), "nothing left running");
    }

    @Test
    void extendingMovesTheDeadlineAndReArmsTheBackstop() throws Exception {
        keeper(Duration.ofHours(2), null, false).start();
        keeper.extend(Duration.ofHours(1), null, "r");
        assertEquals(List.of(T0.plus(Duration.ofMinutes(130)), T0.plus(Duration.ofMinutes(190))), armed);
        clock.advance(Duration.ofMinutes(150));
        keeper.tick();
        assertEquals(LeaseKeeper.State.READY, keeper.state(), "the old deadline passed, the new one has not");
    }

    @Test
    void aSpotNoticeDrainsWithinItsTwoMinutes() throws Exception {
        keeper(Duration.ofHours(2), null, false).start();
        longBuild();
        notices = List.of(new Notice(EndReason.SPOT_INTERRUPTION, "spot terminate", clock.instant().plusSeconds(120)));
        keeper.tick();
        awaitPowerOff();
        assertEquals(EndReason.SPOT_INTERRUPTION, keeper.endReason().orElseThrow());
        assertTrue(keeper.timeline().get(0).what().endsWith("budget 100s"), "min(drain budget, notice - 10s)");
    }

    @Test
    void aRebalanceRecommendationOnlyWarnsUnlessToldToDrain() throws Exception {
        keeper(Duration.ofHours(2), null, false).start();
        notices = List.of(new Notice(EndReason.REBALANCE_RECOMMENDATION, "rebalance", null));
        keeper.tick();
        clock.advance(Duration.ofSeconds(10));
        keeper.tick();
        assertEquals(LeaseKeeper.State.READY, keeper.state());
        keeper.close();

        Files.delete(dir.resolve("lease.properties"));
        keeper(Duration.ofHours(2), null, true).start();
        keeper.tick();
        awaitPowerOff();
        assertEquals(EndReason.REBALANCE_RECOMMENDATION, keeper.endReason().orElseThrow());
    }

    @Test
    void aScheduledStopAnHourAwayIsReportedAndDrainsOnlyNearItsNotBefore() throws Exception {
        keeper(Duration.ofHours(2), null, false).start();
        Instant notBefore = T0.plus(Duration.ofHours(1));
        notices = List.of(new Notice(EndReason.SCHEDULED_EVENT, "instance-stop", notBefore, "instance-stop"));
        keeper.tick();
        assertEquals(LeaseKeeper.State.READY, keeper.state());
        assertEquals(List.of("EC2 scheduled instance-stop at 2026-11-22T11:00:00Z: the agent drains and ends the instance"
                + " from 2026-11-22T10:57:15Z unless its lease ends it first"), keeper.upcomingEvents());
        assertEquals(EndReason.SCHEDULED_EVENT, keeper.endReason().orElseThrow(), "it comes before the deadline");

        clock.advance(Duration.ofMinutes(57)); // 10:57:00, still before the drain budget, margin and poll
        keeper.tick();
        assertEquals(LeaseKeeper.State.READY, keeper.state());
        clock.advance(Duration.ofSeconds(20)); // 10:57:20
        keeper.tick();
        awaitPowerOff();
        assertEquals(EndReason.SCHEDULED_EVENT, keeper.endReason().orElseThrow());
    }

    @Test
    void aRebootEventIsReportedAndNeverEndsTheInstance() throws Exception {
        keeper(Duration.ofHours(2), null, false).start();
        for (String code : List.of("system-reboot", "instance-reboot")) {
            notices = List.of(new Notice(EndReason.SCHEDULED_EVENT, code, T0.plusSeconds(30), code));
            clock.advance(Duration.ofSeconds(10));
            keeper.tick();
            assertEquals(LeaseKeeper.State.READY, keeper.state(), code);
            assertEquals(List.of("EC2 scheduled " + code + " at 2026-11-22T10:00:30Z: the instance reboots and keeps its"
                    + " volumes and lease; the agent does not end it"), keeper.upcomingEvents());
        }
        clock.advance(Duration.ofMinutes(5)); // past the event's NotBefore
        keeper.tick();
        assertEquals(LeaseKeeper.State.READY, keeper.state());
        assertEquals(EndReason.DEADLINE, keeper.endReason().orElseThrow());
        assertFalse(poweredOff.await(2, TimeUnit.SECONDS), "powered off for a reboot: " + steps);

        notices = List.of(); // the event completed: it leaves Status
        clock.advance(Duration.ofSeconds(10));
        keeper.tick();
        assertEquals(List.of(), keeper.upcomingEvents());
    }

    @Test
    void aRunningBuildKeepsTheAgentAliveAndTheIdleClockStartsWhenItEnds() throws Exception {
        keeper(Duration.ofHours(2), Duration.ofMinutes(10), false).start();
        BuildRecord build = longBuild();
        keeper.tick();
        clock.advance(Duration.ofMinutes(30));
        keeper.tick();
        assertEquals(LeaseKeeper.State.READY, keeper.state(), "busy: " + keeper.busyReasons());
        assertEquals(List.of("build " + build.id() + " running"), keeper.busyReasons());
        builds.cancel(build.id(), Duration.ofSeconds(1));
        keeper.tick(); // idle from now
        clock.advance(Duration.ofMinutes(9));
        keeper.tick();
        assertEquals(LeaseKeeper.State.READY, keeper.state());
        clock.advance(Duration.ofMinutes(1));
        keeper.tick();
        awaitPowerOff();
        assertEquals(EndReason.IDLE, keeper.endReason().orElseThrow());
    }

    @Test
    void shutdownIsIdempotentAndRefusesNewBuilds() throws Exception {
        keeper(Duration.ofHours(2), null, false).start();
        Instant first = keeper.shutdown("test");
        clock.advance(Duration.ofSeconds(5));
        assertEquals(first, keeper.shutdown("again"));
        awaitPowerOff();
        IllegalStateException e = org.junit.jupiter.api.Assertions.assertThrows(IllegalStateException.class,
                () -> builds.start(new BuildSpec(tree, false, List.of(), List.of(), List.of("true"), Map.of(), false, "", Map.of())));
        assertTrue(e.getMessage().contains("shutting down"), e.getMessage());
    }

    @Test
    void theAgentLogEndsOnlyAfterItsLastLineAndPowerOffWaitsForItsFollowers() throws Exception {
        keeper(Duration.ofHours(2), null, false).start();
        keeper.agentLogFollowerOpened(); // a `kiln logs -f agent` still reading
        keeper.shutdown("test");
        long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (!keeper.agentLogEnded() && System.nanoTime() < end) {
            Thread.sleep(10);
        }
        assertTrue(keeper.agentLogEnded(), "the log's end is announced");
        assertTrue(keeper.timeline().get(keeper.timeline().size() - 1).what().startsWith("powering off"),
                "the power-off line is written before the end is announced: " + keeper.timeline());
        assertFalse(poweredOff.await(500, TimeUnit.MILLISECONDS), "power-off waits for the follower to read to the end");
        keeper.agentLogFollowerClosed();
        awaitPowerOff();
    }
}
