package dev.kiln.agent.build;

import dev.kiln.agent.logs.LogChannel;
import dev.kiln.agent.logs.LogFile;
import dev.kiln.agent.logs.Segment;
import dev.kiln.testkit.Prerequisites;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * BuildManager with real processes as the real unprivileged build user (the agent runs as root in
 * CI, so builds run as `kiln`, which .ci/install creates).
 */
class BuildManagerTest {

    @TempDir
    Path dir;

    Path state;
    Path tree;
    BuildManager builds;
    BuildUser user;

    @BeforeEach
    void setUp() throws IOException {
        Prerequisites.requireCommand("setsid", "apt-get install util-linux");
        if (BuildUser.agentIsRoot()) {
            boolean exists;
            try {
                BuildUser.resolve("kiln");
                exists = true;
            } catch (IllegalStateException e) {
                exists = false;
            }
            Prerequisites.require("the unprivileged build user 'kiln'", exists, "useradd --system --create-home kiln (bash .ci/install does it)");
        }
        user = BuildUser.resolve(null);
        state = dir.resolve("state");
        tree = Files.createDirectories(dir.resolve("tree"));
        BuildUsers.giveTo(dir, user);
        BuildUsers.giveTo(tree, user);
        builds = manager();
    }

    BuildManager manager() throws IOException {
        return new BuildManager(new BuildStore(state), new OsProcessLauncher(), Clock.systemUTC(),
                () -> BuildUser.resolve(null), new TupProfiles(null), Duration.ofSeconds(5));
    }

    @AfterEach
    void tearDown() {
        builds.close();
    }

    BuildSpec command(String script, boolean queue, String requestId) {
        return new BuildSpec(tree, false, List.of(), List.of(), List.of("sh", "-c", script), Map.of(), queue,
                requestId, Map.of());
    }

    BuildSpec tup(List<String> profiles, List<BuildSpec.Profile> defs) {
        return new BuildSpec(tree, true, profiles, defs, List.of(), Map.of(), false, "", Map.of());
    }

    BuildRecord awaitEnd(String id) throws InterruptedException {
        return awaitEnd(builds, id);
    }

    /** Waits (at most 60 s) for a build of {@code builds} to end; BootBuildTest shares it. */
    static BuildRecord awaitEnd(BuildManager builds, String id) throws InterruptedException {
        Instant giveUp = Instant.now().plusSeconds(60);
        while (Instant.now().isBefore(giveUp)) {
            BuildRecord r = builds.get(id);
            if (r.state().ended()) {
                return r;
            }
            Thread.sleep(50);
        }
        throw new AssertionError("build " + id + " did not end within 60 s");
    }

    String log(String id) throws IOException {
        return log(state, id);
    }

    /** A build's log file under an agent state directory. */
    static String log(Path state, String id) throws IOException {
        return Files.readString(state.resolve("builds").resolve(id).resolve("log"), StandardCharsets.UTF_8);
    }

    @Test
    void runsACommandAsTheUnprivilegedUserAndKeepsItsExitStatus() throws Exception {
        BuildRecord r = awaitEnd(builds.start(command("id -u; exit 7", false, "")).id());
        assertEquals(BuildState.FAILED, r.state());
        assertEquals(7, r.exitCode());
        int uid = Integer.parseInt(log(r.id()).trim());
        assertNotEquals(0, uid, "builds never run as root");
        assertEquals(user.uid(), uid);
    }

    @Test
    void keepsEveryByteOfStdoutAndStderrMarkedWithItsStream() throws Exception {
        BuildRecord r = awaitEnd(builds.start(command(
                "printf out1; sleep 0.2; printf err1 >&2; sleep 0.2; printf out2; sleep 0.2; printf err2 >&2", false, "")).id());
        assertEquals(BuildState.SUCCEEDED, r.state());
        assertEquals(0, r.exitCode());
        Path log = state.resolve("builds").resolve(r.id()).resolve("log");
        assertEquals("out1err1out2err2", Files.readString(log));
        assertEquals(16, r.logSize());
        List<Segment> segments = LogFile.read(log, 0, 1000, LogChannel.STDOUT);
        assertEquals("STDOUT:out1 STDERR:err1 STDOUT:out2 STDERR:err2", segments.stream()
                .map(s -> s.stream() + ":" + new String(s.data(), StandardCharsets.UTF_8)).collect(Collectors.joining(" ")));
        // Reading from the middle of a segment keeps its stream.
        assertEquals(LogChannel.STDERR, LogFile.read(log, 5, 3, LogChannel.STDOUT).get(0).stream());
    }

    @Test
    void aTupBuildInAWorkTreeOnAReadOnlyMountIsRefusedNamingTheMount() throws Exception {
        // A real read-only mount (a read-only bind of the tree), as a server's volumes are mounted.
        Prerequisites.require("root (to mount)", BuildUser.agentIsRoot(), "run the tests as root, as CI does");
        assertEquals(0, new ProcessBuilder("mount", "--bind", tree.toString(), tree.toString()).inheritIO().start().waitFor());
        try {
            assertEquals(0, new ProcessBuilder("mount", "-o", "remount,bind,ro", tree.toString()).inheritIO().start().waitFor());
            WorkTreeReadOnlyException e = assertThrows(WorkTreeReadOnlyException.class, () -> builds.start(tup(List.of(), List.of())));
            assertTrue(e.getMessage().contains("the work tree " + tree + " is on " + tree + ", which is mounted read-only"), e.getMessage());
            assertEquals(List.of(), builds.list(10), "nothing was started or recorded");
        } finally {
            new ProcessBuilder("umount", tree.toString()).inheritIO().start().waitFor();
        }
    }

    @Test
    void aSecondBuildInTheSameTreeIsRefusedNamingTheRunningOne() throws Exception {
        BuildRecord first = builds.start(command("sleep 30", false, ""));
        BuildConflictException e = assertThrows(BuildConflictException.class, () -> builds.start(command("true", false, "")));
        assertEquals(first.id(), e.runningId());
        assertTrue(e.getMessage().startsWith("build " + first.id() + " is already running in " + tree), e.getMessage());
        builds.cancel(first.id(), Duration.ofSeconds(1));
    }

    @Test
    void aQueuedBuildRunsAfterTheRunningOne() throws Exception {
        BuildRecord first = builds.start(command("sleep 0.5; echo first > order", false, ""));
        BuildRecord second = builds.start(command("echo second >> order", true, ""));
        assertEquals(BuildState.QUEUED, second.state());
        assertEquals(BuildState.SUCCEEDED, awaitEnd(second.id()).state());
        assertEquals(BuildState.SUCCEEDED, awaitEnd(first.id()).state());
        assertEquals("first\nsecond\n", Files.readString(tree.resolve("order")));
    }

    @Test
    void repeatingARequestIdReturnsTheSameBuild() throws Exception {
        BuildRecord a = builds.start(command("true", false, "req-1"));
        BuildRecord b = builds.start(command("true", false, "req-1"));
        assertEquals(a.id(), b.id());
        assertEquals(1, builds.list(100).size());
    }

    @Test
    void cancelStopsTheWholeProcessGroup() throws Exception {
        Path pidFile = tree.resolve("child.pid");
        BuildRecord r = builds.start(command("sleep 300 & echo $! > child.pid; wait", false, ""));
        Instant until = Instant.now().plusSeconds(10);
        while (!Files.exists(pidFile) || Files.readString(pidFile).isBlank()) {
            assertTrue(Instant.now().isBefore(until), "the build wrote its child's pid");
            Thread.sleep(20);
        }
        long child = Long.parseLong(Files.readString(pidFile).trim());
        BuildRecord cancelled = builds.cancel(r.id(), Duration.ofSeconds(2));
        assertEquals(BuildState.CANCELLED, cancelled.state());
        Thread.sleep(200);
        assertFalse(running(child), "the build's child is gone too");
    }

    @Test
    void cancelKillsABuildThatIgnoresTerm() throws Exception {
        BuildRecord r = builds.start(command("trap '' TERM; echo ready; while true; do sleep 0.1; done", false, ""));
        while (!log(r.id()).contains("ready")) {
            Thread.sleep(20);
        }
        Instant before = Instant.now();
        BuildRecord cancelled = builds.cancel(r.id(), Duration.ofSeconds(1));
        assertEquals(BuildState.CANCELLED, cancelled.state());
        assertTrue(Duration.between(before, Instant.now()).toMillis() >= 1000, "TERM was given its grace period");
    }

    @Test
    void aBuildRunningWhenTheAgentStopsIsInterruptedAndItsRecordSurvives() throws Exception {
        BuildRecord r = builds.start(command("echo started; sleep 300", false, ""));
        while (!log(r.id()).contains("started")) {
            Thread.sleep(20);
        }
        builds.close();
        builds = manager(); // the agent starts again
        BuildRecord after = builds.get(r.id());
        assertEquals(BuildState.INTERRUPTED, after.state());
        assertEquals("started\n", log(r.id()));
        assertEquals(8, after.logSize());
    }

    /**
     * True while a process runs. A process that exited but was not yet reaped (a zombie: the
     * sandbox's PID 1 here does not reap orphans) is not running.
     */
    static boolean running(long pid) throws IOException {
        Path stat = Path.of("/proc", Long.toString(pid), "stat");
        if (!Files.exists(stat)) {
            return false;
        }
        String s = Files.readString(stat);
        return s.charAt(s.lastIndexOf(')') + 2) != 'Z';
    }

    @Test
    void aRecordLeftRunningByACrashIsMarkedInterruptedOnStart() throws Exception {
        BuildStore store = new BuildStore(state);
        BuildRecord crashed = new BuildRecord("b-crashed", command("true", false, ""), BuildState.RUNNING,
                Instant.now(), Instant.now(), null, null, 3, 10, 0);
        store.save(crashed);
        builds.close();
        builds = manager();
        assertEquals(BuildState.INTERRUPTED, builds.get("b-crashed").state());
        assertEquals(BuildState.INTERRUPTED, manager().get("b-crashed").state(), "and that is persisted");
    }

    @Test
    void anAgentStartingAfterACrashStopsTheBuildProcessesTheOldOneLeftRunning() throws Exception {
        Path pidFile = tree.resolve("orphan.pid");
        BuildRecord r = builds.start(command("echo $$ > orphan.pid; exec sleep 300", false, ""));
        while (!Files.exists(pidFile) || Files.readString(pidFile).isBlank()) {
            Thread.sleep(20);
        }
        long orphan = Long.parseLong(Files.readString(pidFile).trim());
        // A second manager on the same state directory, while the first never got to stop its
        // build: what an agent sees when it starts after a crash (kill -9).
        BuildManager afterCrash = manager();
        try {
            assertEquals(BuildState.INTERRUPTED, afterCrash.get(r.id()).state());
            Instant until = Instant.now().plusSeconds(10);
            while (running(orphan) && Instant.now().isBefore(until)) {
                Thread.sleep(50);
            }
            assertFalse(running(orphan), "the orphaned build process was stopped");
        } finally {
            afterCrash.close();
        }
    }

    @Test
    void runsTupInitialisingTheTreeWritingProfilesAndReportingProgress() throws Exception {
        Prerequisites.requireCommand("tup", "apt-get install tup fuse3");
        Files.writeString(tree.resolve("Tupfile"), ": foreach *.txt |> tr a-z A-Z < %f > %o |> %B.up\n");
        for (int i = 1; i <= 3; i++) {
            Files.writeString(tree.resolve("f" + i + ".txt"), "hello " + i + "\n");
        }
        try (var files = Files.list(tree)) {
            for (Path f : files.toList()) {
                BuildUsers.giveTo(f, user);
            }
        }
        BuildRecord r = awaitEnd(builds.start(tup(List.of("shout"),
                List.of(new BuildSpec.Profile("shout", Map.of("LEVEL", "11"))))).id());
        assertEquals(BuildState.SUCCEEDED, r.state(), log(r.id()));
        assertEquals("HELLO 2\n", Files.readString(tree.resolve("build-shout/f2.up")));
        assertEquals("CONFIG_LEVEL=11\n", Files.readString(tree.resolve("build-shout/tup.config")));
        assertEquals(user.uid(), Files.getAttribute(tree.resolve("build-shout/f2.up"), "unix:uid"));
        assertEquals(3, r.done());
        assertEquals(3, r.total());
        assertTrue(log(r.id()).contains("kiln: initialising tup in " + tree), log(r.id()));

        BuildRecord again = awaitEnd(builds.start(tup(List.of("shout"), List.of())).id());
        assertEquals(BuildState.SUCCEEDED, again.state());
        assertTrue(log(again.id()).contains("No commands to execute"), log(again.id()));
    }

    @Test
    void profilesAreWrittenWithTheBuildUsersAccessSoItsLinksLeadNowhere() throws Exception {
        Prerequisites.requireCommand("tup", "apt-get install tup fuse3");
        Prerequisites.require("root", BuildUser.agentIsRoot(), "tests run as root (sudo), as the agent does");
        Files.writeString(tree.resolve("Tupfile"), "");
        BuildUsers.giveTo(tree.resolve("Tupfile"), user);
        // Root's, outside the tree: a directory only root may enter, and a file beside the tree.
        Path secret = Files.createDirectories(dir.resolve("secret"));
        Files.setPosixFilePermissions(secret, java.nio.file.attribute.PosixFilePermissions.fromString("rwx------"));
        Path inSecret = Files.writeString(secret.resolve("tup.config"), "ROOT\n");
        Path rootFile = Files.writeString(dir.resolve("root-owned"), "ROOT\n");
        // What the build user can leave in its tree: build-a a link to root's directory, build-b's
        // tup.config a link to root's file, build-c's a hard link to root's file (made here as
        // root; fs.protected_hardlinks stops the build user only where it is set).
        Files.createSymbolicLink(tree.resolve("build-a"), secret);
        for (String d : List.of("build-b", "build-c")) {
            BuildUsers.giveTo(Files.createDirectory(tree.resolve(d)), user);
        }
        Files.createSymbolicLink(tree.resolve("build-b/tup.config"), inSecret);
        Files.createLink(tree.resolve("build-c/tup.config"), rootFile);
        for (String p : List.of("a", "b", "c")) {
            BuildRecord r = awaitEnd(builds.start(tup(List.of(p), List.of(new BuildSpec.Profile(p, Map.of("LEVEL", "11"))))).id());
            assertEquals(BuildState.FAILED, r.state(), log(r.id()));
            assertTrue(log(r.id()).contains("build-" + p), "the failure names the profile's path: " + log(r.id()));
        }
        // A directory swapped for a link to root's directory while profiles are written.
        java.util.concurrent.atomic.AtomicBoolean stop = new java.util.concurrent.atomic.AtomicBoolean();
        Path d = tree.resolve("build-d");
        Thread swapper = new Thread(() -> {
            try {
                Path real = tree.resolve("build-d.dir");
                Path link = Files.createSymbolicLink(tree.resolve("build-d.link"), secret);
                BuildUsers.giveTo(Files.createDirectory(d), user);
                while (!stop.get()) {
                    Files.move(d, real);
                    Files.move(link, d);
                    Files.move(d, link);
                    Files.move(real, d);
                }
            } catch (IOException e) {
                throw new java.io.UncheckedIOException(e);
            }
        });
        swapper.start();
        try {
            for (int i = 0; i < 15; i++) {
                awaitEnd(builds.start(tup(List.of("d"), List.of(new BuildSpec.Profile("d", Map.of("N", Integer.toString(i)))))).id());
            }
        } finally {
            stop.set(true);
            swapper.join(10_000);
        }
        assertEquals("ROOT\n", Files.readString(inSecret), "root's file in root's directory is untouched");
        assertEquals("ROOT\n", Files.readString(rootFile), "root's file beside the tree is untouched");
        try (var entries = Files.list(secret)) {
            assertEquals(List.of(inSecret), entries.toList(), "nothing was made in root's directory");
        }
    }

    @Test
    void anUndefinedProfileFailsTheBuildSayingSo() throws Exception {
        Prerequisites.requireCommand("tup", "apt-get install tup fuse3");
        Files.writeString(tree.resolve("Tupfile"), "");
        BuildUsers.giveTo(tree.resolve("Tupfile"), user);
        BuildRecord r = awaitEnd(builds.start(tup(List.of("nope"), List.of())).id());
        assertEquals(BuildState.FAILED, r.state());
        assertTrue(log(r.id()).contains("profile 'nope' is not defined"), log(r.id()));
    }

    @Test
    void rejectsBadRequestsBeforeRunningAnything() {
        assertThrows(IllegalArgumentException.class, () -> builds.start(new BuildSpec(Path.of("relative"), false,
                List.of(), List.of(), List.of("true"), Map.of(), false, "", Map.of())));
        assertThrows(IllegalArgumentException.class, () -> builds.start(new BuildSpec(dir.resolve("missing"), false,
                List.of(), List.of(), List.of("true"), Map.of(), false, "", Map.of())));
        assertThrows(IllegalArgumentException.class, () -> builds.start(tup(List.of("../etc"), List.of())));
        assertThrows(IllegalArgumentException.class, () -> builds.start(command("", false, "").withNoArgv()));
        assertSame(0, builds.list(10).size());
    }
}
