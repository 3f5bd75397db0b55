package dev.kiln.agent.service;

import dev.kiln.agent.build.BuildManager;
import dev.kiln.agent.build.BuildRecord;
import dev.kiln.agent.build.BuildState;
import dev.kiln.agent.build.BuildStore;
import dev.kiln.agent.build.BuildUser;
import dev.kiln.agent.build.OsProcessLauncher;
import dev.kiln.agent.build.TupProfiles;
import dev.kiln.agent.config.BuildSettings;
import dev.kiln.agent.config.ServiceSettings;
import dev.kiln.agent.logs.LogCursor;
import dev.kiln.agent.logs.RotatingLog;
import dev.kiln.agent.logs.Segment;
import dev.kiln.testkit.FreePorts;
import dev.kiln.testkit.Prerequisites;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.function.Predicate;
import java.util.function.Supplier;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The boot script and the services with the real BuildManager and real processes as the
 * unprivileged build user, a boot id file standing in for the kernel's. The restart policy's
 * waits are shortened (a backoff of 50 ms) so that giving up takes a moment, not half a minute.
 */
class ServicesTest {

    static final ServicePolicy QUICK = new ServicePolicy(Duration.ofMillis(50), Duration.ofMillis(200),
            Duration.ofSeconds(10), 5, 10L * 1024 * 1024, Duration.ofMillis(200));

    @TempDir
    Path dir;

    Path state;
    Path bootId;
    BuildUser user;
    BuildManager builds;
    final List<ServiceSupervisor> supervisors = new ArrayList<>();

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
        // As on an instance: the state directory is root's, and others may only pass through it.
        Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwx--x--x"));
        state = Files.createDirectory(dir.resolve("state"), PosixFilePermissions.asFileAttribute(
                PosixFilePermissions.fromString("rwx--x--x")));
        bootId = dir.resolve("boot_id");
        Files.writeString(bootId, "6f0c2a1e-0b8e-4c55-9a51-3d1f0e6b7a01\n");
        builds = new BuildManager(new BuildStore(state), new OsProcessLauncher(), Clock.systemUTC(),
                () -> BuildUser.resolve(null), new TupProfiles(null), Duration.ofSeconds(5));
    }

    @AfterEach
    void tearDown() {
        supervisors.forEach(ServiceSupervisor::close);
        builds.close();
    }

    ServiceSupervisor supervisor(Map<String, String> labels, ServiceSettings... services) throws IOException {
        ServiceSupervisor s = new ServiceSupervisor(List.of(services), labels, state, new OsProcessLauncher(),
                () -> BuildUser.resolve(null), QUICK, Clock.systemUTC());
        supervisors.add(s);
        return s;
    }

    BootScript bootScript(String script, ServiceSupervisor services) {
        return new BootScript(script, builds, services, state, bootId, () -> BuildUser.resolve(null));
    }

    static ServiceStatus status(ServiceSupervisor s, String name) {
        return s.statuses().stream().filter(x -> x.settings().name().equals(name)).findFirst().orElseThrow();
    }

    static <T> T await(Supplier<T> value, Predicate<T> until, String what) throws InterruptedException {
        Instant giveUp = Instant.now().plusSeconds(60);
        T v = value.get();
        while (!until.test(v)) {
            if (Instant.now().isAfter(giveUp)) {
                throw new AssertionError(what + " did not happen within 60 s; last seen: " + v);
            }
            Thread.sleep(50);
            v = value.get();
        }
        return v;
    }

    static ServiceStatus awaitService(ServiceSupervisor s, String name, Predicate<ServiceStatus> until, String what)
            throws InterruptedException {
        return await(() -> status(s, name), until, "service " + name + ": " + what);
    }

    static String read(RotatingLog log, long from) throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try (LogCursor cursor = log.cursor()) {
            long offset = from;
            for (List<Segment> s = cursor.read(offset, 65536); !s.isEmpty(); s = cursor.read(offset, 65536)) {
                for (Segment seg : s) {
                    out.write(seg.data());
                    offset += seg.data().length;
                }
            }
        }
        return out.toString(StandardCharsets.UTF_8);
    }

    static ServiceSettings service(String name, int port, String command, boolean keepsAlive) {
        return new ServiceSettings(name, port, "/", command, keepsAlive);
    }

    /** Live processes in a process group, read from /proc as ps would. */
    static List<Long> group(long pgid) throws IOException {
        List<Long> members = new ArrayList<>();
        try (var dirs = Files.newDirectoryStream(Path.of("/proc"), "[0-9]*")) {
            for (Path d : dirs) {
                try {
                    String stat = Files.readString(d.resolve("stat"));
                    String[] rest = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
                    if (Long.parseLong(rest[2]) == pgid && !rest[0].equals("Z")) { // a zombie has ended
                        members.add(Long.parseLong(d.getFileName().toString()));
                    }
                } catch (IOException | RuntimeException ignored) {
                    // gone
                }
            }
        }
        return members;
    }

    /** Whether a process has ended and only waits to be reaped (by init, once it left its parent). */
    static boolean zombie(long pid) {
        try {
            String stat = Files.readString(Path.of("/proc", String.valueOf(pid), "stat"));
            return stat.substring(stat.lastIndexOf(')') + 2).startsWith("Z");
        } catch (IOException e) {
            return true; // gone
        }
    }

    static boolean accepts(int port) {
        try (Socket s = new Socket()) {
            s.connect(new InetSocketAddress("127.0.0.1", port), 1000);
            return true;
        } catch (IOException e) {
            return false;
        }
    }

    @Test
    void theBootScriptRunsOncePerBootWithTheLabelsThenTheServicesStart() throws Exception {
        ServiceSupervisor services = supervisor(Map.of("pr", "3012", "branch", "main"),
                service("web", FreePorts.loopbackPort(), "echo \"web sees pr $KILN_LABEL_PR in $PWD\"; exec sleep 600", false));
        assertEquals(ServiceState.WAITING, status(services, "web").state());
        String script = "echo \"pr=$KILN_LABEL_PR branch=$KILN_LABEL_BRANCH uid=$(id -u) in $PWD\"\necho run >> runs\n";
        BootScript boot = bootScript(script, services);
        boot.run(Map.of());
        BuildRecord ran = await(() -> boot.record().orElseThrow(), r -> r.state().ended(), "the boot script's end");
        Path work = state.resolve("work");
        String log = Files.readString(state.resolve("builds").resolve(ran.id()).resolve("log"));
        assertEquals(BuildState.SUCCEEDED, ran.state(), log);
        assertEquals("pr=3012 branch=main uid=" + user.uid() + " in " + work + "\n", log);
        assertEquals("true", ran.spec().labels().get("kiln:boot"));
        assertEquals(user.uid(), ((Number) Files.getAttribute(work, "unix:uid")).intValue(), "the work directory is the build user's");

        // Root wrote the script where the build user can read it but not change it.
        Path file = state.resolve("boot-script/script");
        assertEquals(List.of("/bin/sh", file.toString()), ran.spec().argv());
        assertEquals(script, Files.readString(file));
        if (BuildUser.agentIsRoot()) {
            assertEquals(0, ((Number) Files.getAttribute(file, "unix:uid")).intValue());
            assertEquals(user.gid(), ((Number) Files.getAttribute(file, "unix:gid")).intValue());
        }
        assertEquals("rw-r-----", PosixFilePermissions.toString(Files.getPosixFilePermissions(file)));
        assertEquals("rwxr-x---", PosixFilePermissions.toString(Files.getPosixFilePermissions(file.getParent())));

        ServiceStatus web = awaitService(services, "web", s -> s.pid() > 0, "start after the boot script");
        assertEquals(ServiceState.STARTING, web.state(), "started, and nothing listens on its port");
        assertFalse(web.portOpen());
        await(() -> {
            try {
                return read(services.log("web"), 0);
            } catch (IOException e) {
                throw new IllegalStateException(e);
            }
        }, l -> l.contains("web sees pr 3012 in " + work + "\n"), "the service's output in its log");

        // The agent restarts in the same boot: the run is found, not made again.
        BootScript again = bootScript(script, services);
        again.run(Map.of());
        assertEquals(ran.id(), again.record().orElseThrow().id());
        assertEquals("run\n", Files.readString(work.resolve("runs")));
        assertEquals(1, builds.list(10).size());
        assertEquals(web.pid(), status(services, "web").pid(), "the running service is left alone");
    }

    @Test
    void aFailingBootScriptKeepsTheServicesFromStartingAndSaysWhy() throws Exception {
        ServiceSupervisor services = supervisor(Map.of(),
                service("web", FreePorts.loopbackPort(), "touch started; exec sleep 600", true),
                service("db", FreePorts.loopbackPort(), null, false));
        BootScript boot = bootScript("echo cannot check out the branch >&2\nexit 3\n", services);
        boot.run(Map.of());
        ServiceStatus web = awaitService(services, "web", s -> s.state() == ServiceState.FAILED, "be given up");
        BuildRecord ran = boot.record().orElseThrow();
        assertEquals(BuildState.FAILED, ran.state());
        assertEquals(3, ran.exitCode());
        assertEquals("the boot script failed with exit status 3", web.detail());
        assertEquals(0, web.pid());
        assertEquals(List.of("boot script " + ran.id() + " failed with exit status 3; services not started: web"
                + " (kiln logs boot)"), boot.problems());
        assertEquals(ServiceState.EXTERNAL, status(services, "db").state(), "a declared-only service is not started anyway");
        assertFalse(Files.exists(state.resolve("work/started")), "the service's command never ran");
        assertTrue(services.log("web").ended(), "followers of its log are told it will not run");
        assertEquals(List.of(), services.busyReasons());
    }

    @Test
    void aKilledServiceIsStartedAgain() throws Exception {
        ServiceSupervisor services = supervisor(Map.of(), service("web", FreePorts.loopbackPort(), "exec sleep 600", false));
        bootScript(null, services).run(Map.of());
        ServiceStatus first = awaitService(services, "web", s -> s.pid() > 0, "start");
        assertEquals(0, first.restarts());
        ProcessHandle.of(first.pid()).orElseThrow().destroyForcibly();
        ServiceStatus second = awaitService(services, "web", s -> s.restarts() == 1 && s.pid() > 0, "start again");
        assertNotEquals(first.pid(), second.pid());
        assertEquals(ServiceState.STARTING, second.state());
        assertTrue(read(services.log("web"), 0).contains("kiln: service web exited with status 137\n"),
                read(services.log("web"), 0));
    }

    @Test
    void repeatedFastFailuresAreGivenUpWithTheReason() throws Exception {
        ServiceSupervisor services = supervisor(Map.of(), service("web", FreePorts.loopbackPort(), "echo attempt; exit 7", true));
        services.startAll();
        ServiceStatus web = awaitService(services, "web", s -> s.state() == ServiceState.FAILED, "be given up");
        assertEquals("exited with status 7; 5 exits in a row, each within 10 s of starting: given up"
                + " (kiln logs service:web)", web.detail());
        assertEquals(4, web.restarts());
        String log = read(services.log("web"), 0);
        assertEquals(5, log.lines().filter("attempt"::equals).count(), log);
        assertTrue(services.log("web").ended());
        assertEquals(List.of(), services.busyReasons(), "a failed service keeps nothing alive");
    }

    @Test
    void aListeningServiceRunsAndTheDrainStopsItsWholeProcessGroup() throws Exception {
        Prerequisites.requireCommand("python3", "apt-get install python3");
        int port = FreePorts.loopbackPort();
        // A second process in the group (the background sleep) must go with it.
        ServiceSupervisor services = supervisor(Map.of(), service("web", port,
                "sleep 600 & exec python3 -m http.server " + port + " --bind 127.0.0.1", false));
        services.startAll();
        ServiceStatus web = awaitService(services, "web", s -> s.state() == ServiceState.RUNNING, "accept connections");
        assertTrue(web.portOpen());
        assertEquals(2, group(web.pid()).size(), "python and the background sleep share the group");

        ServiceActivity activity = new ServiceActivity(services, new BuildSettings(null, null, Duration.ofSeconds(5)));
        assertEquals("stopped web (pid " + web.pid() + ", TERM)", activity.drain(Duration.ofSeconds(60)));
        ServiceStatus stopped = status(services, "web");
        assertEquals(ServiceState.STOPPED, stopped.state());
        assertEquals(0, stopped.pid());
        assertFalse(stopped.portOpen());
        assertFalse(accepts(port), "nothing listens on the port");
        assertEquals(List.of(), group(web.pid()), "the process group is gone");
        assertTrue(services.log("web").ended());
        // Nothing starts it again.
        services.startAll();
        assertEquals(ServiceState.STOPPED, status(services, "web").state());
    }

    @Test
    void aStopEndsWhatLeftTheProcessGroupAndFreesItsPort() throws Exception {
        Prerequisites.requireCommand("python3", "apt-get install python3");
        int port = FreePorts.loopbackPort();
        // The server escapes into its own session (and process group); the leader only sleeps.
        ServiceSupervisor services = supervisor(Map.of(), service("web", port,
                "setsid python3 -m http.server " + port + " --bind 127.0.0.1 & echo stray=$!; exec sleep 600", false));
        services.startAll();
        ServiceStatus web = awaitService(services, "web", s -> s.state() == ServiceState.RUNNING, "accept connections");
        String line = await(() -> {
            try {
                return read(services.log("web"), 0).lines().filter(l -> l.startsWith("stray=")).findFirst().orElse("");
            } catch (IOException e) {
                return "";
            }
        }, l -> !l.isEmpty(), "the server's pid in the log");
        long stray = Long.parseLong(line.substring("stray=".length()));
        ProcessHandle server = ProcessHandle.of(stray).orElseThrow();
        assertNotEquals(web.pid(), server.pid());
        assertTrue(server.isAlive() && Files.readString(Path.of("/proc", String.valueOf(stray), "comm")).startsWith("python"),
                "the pid is the server's");
        assertEquals(List.of(), group(web.pid()).stream().filter(p -> p == stray).toList(),
                "the server left the service's process group");

        services.stopAll(Duration.ofSeconds(5));
        assertEquals(ServiceState.STOPPED, status(services, "web").state());
        assertFalse(server.isAlive() && !zombie(stray), "the server that left the group is gone: "
                + read(services.log("web"), 0));
        assertFalse(accepts(port), "nothing listens on the port");
        assertTrue(read(services.log("web"), 0).contains("kiln: service web: ending 1 process that left its process group"),
                read(services.log("web"), 0));
    }

    @Test
    void aServiceGivenUpLeavesNothingThatLeftItsProcessGroup() throws Exception {
        // Every attempt leaves a process in a session of its own, then fails.
        ServiceSupervisor services = supervisor(Map.of(), service("web", FreePorts.loopbackPort(),
                "setsid sleep 600 >/dev/null 2>&1 & echo stray=$!; exit 7", false));
        services.startAll();
        awaitService(services, "web", s -> s.state() == ServiceState.FAILED, "be given up");
        List<Long> strays = read(services.log("web"), 0).lines().filter(l -> l.startsWith("stray="))
                .map(l -> Long.parseLong(l.substring("stray=".length()))).toList();
        assertEquals(5, strays.size(), read(services.log("web"), 0));
        assertEquals(List.of(), strays.stream().filter(pid -> !zombie(pid)).toList(), "every stray process has ended");
    }

    @Test
    void aServiceListeningOnlyOnIpv6LoopbackRuns() throws Exception {
        Prerequisites.requireCommand("python3", "apt-get install python3");
        int port = FreePorts.loopbackPort();
        ServiceSupervisor services = supervisor(Map.of(), service("web", port,
                "exec python3 -m http.server " + port + " --bind ::1", false));
        services.startAll();
        ServiceStatus web = awaitService(services, "web", s -> s.state() == ServiceState.RUNNING, "accept connections");
        assertTrue(web.portOpen());
        assertFalse(accepts(port), "nothing on 127.0.0.1: the probe found ::1");
        services.stopAll(Duration.ofSeconds(5));
    }

    @Test
    void onlyARunningServiceThatKeepsAliveIsBusy() throws Exception {
        ServiceSupervisor services = supervisor(Map.of(),
                service("notebook", FreePorts.loopbackPort(), "exec sleep 600", true),
                service("web", FreePorts.loopbackPort(), "exec sleep 600", false),
                service("compose", FreePorts.loopbackPort(), null, true));
        assertEquals(List.of(), services.busyReasons(), "waiting for the boot script is not busy");
        services.startAll();
        awaitService(services, "notebook", s -> s.pid() > 0, "start");
        awaitService(services, "web", s -> s.pid() > 0, "start");
        assertEquals(List.of("service notebook running (keeps-alive)"), services.busyReasons());
        ServiceStatus compose = status(services, "compose");
        assertEquals(ServiceState.EXTERNAL, compose.state());
        assertFalse(compose.portOpen());
        assertThrows(ServiceNotFoundException.class, () -> services.log("compose"));
        assertEquals("no service 'api' on this agent (its services: notebook, web, compose)",
                assertThrows(ServiceNotFoundException.class, () -> services.log("api")).getMessage());

        services.stopAll(Duration.ofSeconds(5));
        assertEquals(List.of(), services.busyReasons());
    }

    @Test
    void anAgentThatStartsAgainEndsWhatItsEarlierRunLeftOfItsServices() throws Exception {
        // What a killed agent leaves: the service's process, marked as the supervisor marks it.
        Files.createDirectories(state.resolve("work"));
        dev.kiln.agent.build.BuildUsers.giveTo(state.resolve("work"), user);
        String marker = state.toAbsolutePath().normalize() + ":web";
        Map<String, String> env = new java.util.TreeMap<>(user.environment());
        env.put(ServiceProcesses.MARKER, marker);
        Process orphan = new OsProcessLauncher().start(List.of("/bin/sh", "-c", "exec sleep 600"), state.resolve("work"),
                user, env);
        // Another agent's service of the same name (another state directory) is not touched.
        Map<String, String> otherEnv = new java.util.TreeMap<>(env);
        otherEnv.put(ServiceProcesses.MARKER, dir.resolve("other-state") + ":web");
        Process other = new OsProcessLauncher().start(List.of("/bin/sh", "-c", "exec sleep 600"), state.resolve("work"),
                user, otherEnv);
        try {
            // Left running means running as the build user: past setsid and setpriv, into sleep.
            for (Process p : List.of(orphan, other)) {
                await(() -> {
                    try {
                        return Files.readString(Path.of("/proc", String.valueOf(p.pid()), "comm")).strip();
                    } catch (IOException e) {
                        return "";
                    }
                }, "sleep"::equals, "the leftover process running");
            }
            supervisor(Map.of(), service("web", FreePorts.loopbackPort(), "exec sleep 600", false));
            assertTrue(orphan.waitFor(30, java.util.concurrent.TimeUnit.SECONDS), "the leftover process was ended");
            assertTrue(other.isAlive(), "another agent's service runs on");
        } finally {
            orphan.destroyForcibly();
            other.destroyForcibly();
        }
    }

    @Test
    void aStopThatMeetsARestartLeavesNothingRunning() throws Exception {
        // A service that exits at once and is started again at once: stops land before, during and
        // after its starts and waits.
        ServicePolicy racing = new ServicePolicy(Duration.ofMillis(1), Duration.ofMillis(1), Duration.ofSeconds(10),
                Integer.MAX_VALUE, 1024 * 1024, Duration.ofMillis(200));
        java.util.Random random = new java.util.Random(7);
        for (int i = 0; i < 10; i++) {
            Path stateDir = Files.createDirectory(dir.resolve("race-" + i), PosixFilePermissions.asFileAttribute(
                    PosixFilePermissions.fromString("rwx--x--x")));
            ServiceSupervisor services = new ServiceSupervisor(List.of(service("web", FreePorts.loopbackPort(),
                    "echo run; exit 1", false)), Map.of(), stateDir, new OsProcessLauncher(),
                    () -> BuildUser.resolve(null), racing, Clock.systemUTC());
            supervisors.add(services);
            services.startAll();
            Thread.sleep(random.nextInt(60));
            services.stopAll(Duration.ofSeconds(5));
            ServiceStatus web = status(services, "web");
            assertEquals(ServiceState.STOPPED, web.state(), web.toString());
            assertEquals(0, web.pid());
            assertTrue(services.log("web").ended());
            String marker = stateDir.toAbsolutePath().normalize() + ":web";
            assertEquals(List.of(), new ServiceProcesses(Path.of("/proc")).find(marker, user.uid(), 0),
                    "nothing of the service runs after the stop");
            long size = services.log("web").size();
            Thread.sleep(100);
            assertEquals(size, services.log("web").size(), "and nothing starts it again");
        }
    }
}
