package dev.kiln.agent.service;

import dev.kiln.agent.build.BuildUser;
import dev.kiln.agent.build.ProcessLauncher;
import dev.kiln.agent.config.ServiceSettings;
import dev.kiln.agent.logs.LogChannel;
import dev.kiln.agent.logs.RotatingLog;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.io.InputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;

/**
 * One service: its process, run as the build user with {@code /bin/sh -c COMMAND} in its own
 * process group, started again after each exit with a doubling backoff, and given up after
 * {@link ServicePolicy#fastFailures()} fast failures in a row. Its output goes to its
 * {@link RotatingLog}, with kiln's own lines ("kiln: ...") on stderr.
 *
 * <p>One thread supervises the process. Starting and stopping decide under this object's lock: a
 * stop that comes while the service waits to restart, or just before it starts again, finds either
 * the process (and signals it) or a service that will not start again.
 */
final class SupervisedService {

    private static final Logger LOG = LoggerFactory.getLogger(SupervisedService.class);
    /** How long processes that left the group get after TERM when the service is given up. */
    private static final Duration GIVE_UP_GRACE = Duration.ofSeconds(5);

    private final ServiceSettings settings;
    private final RotatingLog log; // null for a declared-only service
    private final ProcessLauncher launcher;
    private final Supplier<BuildUser> user;
    private final Path workDir;
    private final Map<String, String> env;
    private final String id;
    private final ServicePolicy policy;
    private final Clock clock;
    private final ServiceProcesses processes;
    private final ExecutorService pumps;

    private ServiceState state;
    private String detail = "";
    private Instant since;
    private Process process;
    private int restarts;
    private boolean stopping;
    private Duration stopGrace = GIVE_UP_GRACE;
    private Thread supervisor;

    /**
     * @param env what its process's environment has besides the build user's (labels, and the
     *            marker {@link ServiceProcesses#MARKER})
     * @param id  the value of its marker
     */
    SupervisedService(ServiceSettings settings, RotatingLog log, ProcessLauncher launcher, Supplier<BuildUser> user,
                      Path workDir, Map<String, String> env, String id, ServicePolicy policy, Clock clock,
                      ServiceProcesses processes, ExecutorService pumps) {
        this.settings = settings;
        this.log = log;
        this.launcher = launcher;
        this.user = user;
        this.workDir = workDir;
        this.env = env;
        this.id = id;
        this.policy = policy;
        this.clock = clock;
        this.processes = processes;
        this.pumps = pumps;
        this.state = settings.command() == null ? ServiceState.EXTERNAL : ServiceState.WAITING;
        this.since = clock.instant();
    }

    ServiceSettings settings() {
        return settings;
    }

    RotatingLog log() {
        return log;
    }

    /** Starts supervising, unless it already started, was given up or is being stopped. */
    synchronized void start() {
        if (state != ServiceState.WAITING || stopping) {
            return;
        }
        supervisor = new Thread(this::supervise, "kiln-service-" + settings.name());
        supervisor.setDaemon(true);
        supervisor.start();
    }

    /** Gives up a service that has not started (the boot script failed); {@code why} becomes its detail. */
    void fail(String why) {
        synchronized (this) {
            if (state != ServiceState.WAITING || stopping) {
                return;
            }
            stopping = true; // it never starts now
        }
        // The log is complete before the state says the service will not run: whoever sees FAILED
        // and follows the log gets its end.
        note("kiln: service " + settings.name() + " not started: " + why + "\n");
        endLog();
        synchronized (this) {
            enter(ServiceState.FAILED, why);
        }
    }

    /** Its state now; a started service whose port accepts connections is RUNNING. */
    ServiceStatus status() {
        boolean open = portOpen();
        synchronized (this) {
            if (state == ServiceState.STARTING && open) {
                enter(ServiceState.RUNNING, "");
            }
            Process p = process;
            return new ServiceStatus(settings, state, p == null ? 0 : p.pid(), restarts, open, detail, since,
                    log == null ? 0 : log.size());
        }
    }

    /** Whether it counts as busy now: it keeps the instance alive and runs, or is about to again. */
    synchronized boolean busy() {
        return settings.keepsAlive() && !stopping
                && (state == ServiceState.STARTING || state == ServiceState.RUNNING || state == ServiceState.RESTARTING);
    }

    /**
     * Stops the service for good: TERM to its process group, KILL after {@code grace}, and KILL to
     * whatever of the group outlives its leader. Returns once the supervisor has recorded STOPPED.
     *
     * @return what happened, for the drain's log, e.g. "web (pid 123, TERM)"; null when there was
     *         nothing to stop (declared only, given up, or already stopping)
     */
    String stop(Duration grace) {
        Process p;
        Thread t;
        ServiceState was;
        synchronized (this) {
            was = state;
            if (stopping || state.finished() || state == ServiceState.EXTERNAL) {
                stopping = true;
                return null;
            }
            stopping = true;
            stopGrace = grace;
            p = process;
            t = supervisor;
            notifyAll(); // a restart backoff ends now
        }
        String how = "not running";
        if (p != null && p.isAlive()) {
            launcher.signalGroup(p.pid(), "TERM");
            how = "pid " + p.pid() + ", TERM";
            try {
                if (!p.waitFor(grace.toMillis(), TimeUnit.MILLISECONDS)) {
                    launcher.signalGroup(p.pid(), "KILL");
                    how = "pid " + p.pid() + ", KILL after " + grace.toSeconds() + "s";
                    p.waitFor(10, TimeUnit.SECONDS);
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        if (t == null) {
            // Never started (waiting for the boot script): nothing runs, nothing will.
            endLog();
            synchronized (this) {
                enter(ServiceState.STOPPED, "stopped before it started");
            }
        } else {
            try {
                t.join(grace.toMillis() + TimeUnit.SECONDS.toMillis(15));
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        return settings.name() + " (" + (was == ServiceState.WAITING ? "never started" : how) + ")";
    }

    private void supervise() {
        String givenUp = null; // why it failed for good, or null when it was stopped
        int fastInARow = 0;
        int exitsInARow = 0;
        boolean again = false;
        while (true) {
            Process p;
            Instant started;
            synchronized (this) {
                if (stopping) {
                    break;
                }
                started = clock.instant();
                try {
                    BuildUser u = user.get();
                    Map<String, String> environment = new TreeMap<>(u.environment());
                    environment.putAll(env);
                    p = launcher.start(List.of("/bin/sh", "-c", settings.command()), workDir, u, environment);
                } catch (IOException | RuntimeException e) {
                    p = null;
                    detail = "cannot start: " + (e.getMessage() == null ? e.toString() : e.getMessage());
                }
                if (p != null) {
                    if (again) {
                        restarts++;
                    }
                    process = p;
                    enter(ServiceState.STARTING, "");
                }
            }
            again = true;
            int exit;
            List<Future<?>> output = List.of();
            if (p == null) {
                note("kiln: service " + settings.name() + " " + detail + "\n");
                exit = -1;
            } else {
                note("kiln: service " + settings.name() + " started (pid " + p.pid() + ")\n");
                output = pumpOutput(p);
                exit = awaitExit(p);
            }
            Duration ran = Duration.between(started, clock.instant());
            boolean fast = ran.compareTo(policy.fastRun()) < 0;
            fastInARow = fast ? fastInARow + 1 : 0;
            exitsInARow = fast ? exitsInARow + 1 : 1;
            boolean last;
            synchronized (this) {
                last = stopping || fastInARow >= policy.fastFailures();
            }
            if (last) {
                // Processes that left the group would hold the port and the output pipe: they go
                // before the output is awaited.
                endStrays();
            }
            awaitOutput(output);
            String how = exit < 0 ? detail : "exited with status " + exit;
            note("kiln: service " + settings.name() + " " + how + "\n");
            synchronized (this) {
                process = null;
                if (stopping) {
                    break;
                }
                if (fastInARow >= policy.fastFailures()) {
                    givenUp = how + "; " + fastInARow + " exits in a row, each within " + policy.fastRun().toSeconds()
                            + " s of starting: given up (kiln logs service:" + settings.name() + ")";
                    stopping = true; // a stop from now on finds nothing to do
                    break;
                }
                Duration wait = policy.backoff(exitsInARow);
                enter(ServiceState.RESTARTING, how + "; starting again in " + seconds(wait));
                long until = System.nanoTime() + wait.toNanos();
                long left;
                while (!stopping && (left = until - System.nanoTime()) > 0) {
                    try {
                        TimeUnit.NANOSECONDS.timedWait(this, left);
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                        stopping = true;
                    }
                }
            }
        }
        endStrays(); // also what an earlier run left outside its group while it waited to restart
        // The log is complete before the state says the service will not run again.
        note("kiln: service " + settings.name() + " " + (givenUp == null ? "stopped" : givenUp) + "\n");
        LOG.info("service {}: {}", settings.name(), givenUp == null ? "stopped" : givenUp);
        endLog();
        synchronized (this) {
            if (givenUp != null) {
                enter(ServiceState.FAILED, givenUp);
            } else {
                enter(ServiceState.STOPPED, "stopped");
            }
        }
    }

    /** Starts copying its output into the log. */
    private List<Future<?>> pumpOutput(Process p) {
        return List.of(pumps.submit(() -> pump(p.getInputStream(), LogChannel.STDOUT)),
                pumps.submit(() -> pump(p.getErrorStream(), LogChannel.STDERR)));
    }

    /** Waits for its exit, then ends what is left of its process group. */
    private int awaitExit(Process p) {
        int exit;
        try {
            exit = p.waitFor();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            launcher.signalGroup(p.pid(), "KILL");
            exit = -1;
        }
        // A child that kept the group (a server forked by the shell) would hold the port and the
        // output pipe: it goes with its leader.
        List<Long> left = processes.find(id, uid(), p.pid());
        if (!left.isEmpty()) {
            launcher.signalGroup(p.pid(), "KILL");
            note("kiln: service " + settings.name() + ": killed " + left.size() + " process"
                    + (left.size() == 1 ? "" : "es") + " left in its process group\n");
            // Gone before the service counts as stopped or starts again (the port is free then).
            for (int i = 0; i < 250 && !processes.find(id, uid(), p.pid()).isEmpty(); i++) {
                try {
                    Thread.sleep(20);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    break;
                }
            }
        }
        return exit;
    }

    /** Waits until its output is all in the log. */
    private static void awaitOutput(List<Future<?>> output) {
        for (Future<?> f : output) {
            try {
                f.get(10, TimeUnit.SECONDS);
            } catch (Exception e) {
                f.cancel(true); // a descendant outside the group still holds the pipe
            }
        }
    }

    /**
     * Ends the processes carrying this service's marker that left its process group (e.g. with
     * setsid): TERM, and KILL to those still there after the stop's grace. Each is checked again
     * for the marker and the build user just before it is signalled.
     */
    private void endStrays() {
        int uid = uid();
        if (uid < 0) {
            return;
        }
        List<Long> left = processes.find(id, uid, 0);
        if (left.isEmpty()) {
            return;
        }
        Duration grace;
        synchronized (this) {
            grace = stopGrace;
        }
        note("kiln: service " + settings.name() + ": ending " + left.size() + " process"
                + (left.size() == 1 ? "" : "es") + " that left its process group " + left + "\n");
        left.forEach(pid -> processes.signal(pid, id, uid, false));
        if (!awaitGone(uid, grace)) {
            List<Long> still = processes.find(id, uid, 0);
            still.forEach(pid -> processes.signal(pid, id, uid, true));
            note("kiln: service " + settings.name() + ": killed " + still + " after " + seconds(grace) + "\n");
            awaitGone(uid, Duration.ofSeconds(5));
        }
    }

    /** Whether every marked process is gone within {@code limit}. */
    private boolean awaitGone(int uid, Duration limit) {
        long until = System.nanoTime() + limit.toNanos();
        while (!processes.find(id, uid, 0).isEmpty()) {
            if (System.nanoTime() - until > 0) {
                return false;
            }
            try {
                Thread.sleep(20);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return false;
            }
        }
        return true;
    }

    private int uid() {
        try {
            return user.get().uid();
        } catch (RuntimeException e) {
            return -1;
        }
    }

    private void pump(InputStream in, LogChannel channel) {
        byte[] buf = new byte[65536];
        try (in) {
            int n;
            while ((n = in.read(buf)) > 0) {
                try {
                    log.append(channel, buf, 0, n);
                } catch (IOException e) {
                    LOG.warn("lost output of service {}: {}", settings.name(), e.toString());
                }
            }
        } catch (IOException e) {
            // the process is gone
        }
    }

    private void enter(ServiceState s, String why) {
        state = s;
        detail = why;
        since = clock.instant();
    }

    private void note(String text) {
        if (log == null) {
            return;
        }
        byte[] b = text.getBytes(StandardCharsets.UTF_8);
        try {
            log.append(LogChannel.STDERR, b, 0, b.length);
        } catch (IOException e) {
            LOG.warn("cannot write to the log of service {}: {}", settings.name(), e.toString());
        }
    }

    private void endLog() {
        if (log == null) {
            return;
        }
        try {
            log.end();
        } catch (IOException e) {
            LOG.warn("cannot close the log of service {}: {}", settings.name(), e.toString());
        }
    }

    /** Whether the port accepts connections on loopback, IPv4 or IPv6 (a server may bind only one). */
    private boolean portOpen() {
        return accepts("127.0.0.1") || accepts("::1");
    }

    private boolean accepts(String loopback) {
        try (Socket s = new Socket()) {
            s.connect(new InetSocketAddress(InetAddress.getByName(loopback), settings.port()),
                    (int) policy.probeTimeout().toMillis());
            return true;
        } catch (IOException e) {
            return false;
        }
    }

    private static String seconds(Duration d) {
        return d.toMillis() % 1000 == 0 ? d.toSeconds() + " s" : d.toMillis() + " ms";
    }
}
