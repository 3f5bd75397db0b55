package dev.kiln.agent.service;

import dev.kiln.agent.build.BuildUser;
import dev.kiln.agent.build.ProcessLauncher;
import dev.kiln.agent.config.LabelSettings;
import dev.kiln.agent.config.ServiceSettings;
import dev.kiln.agent.logs.RotatingLog;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.function.Supplier;

/**
 * The services of {@code kiln.services}, in their configured order: started together once the
 * boot script has succeeded (or at once without one), given up together when it failed, stopped
 * together by the drain or the agent's stop. Their logs live in
 * {@code <state-dir>/services/<name>/} ({@link RotatingLog}, capped).
 */
public final class ServiceSupervisor implements AutoCloseable {

    private static final Logger LOG = LoggerFactory.getLogger(ServiceSupervisor.class);

    private final Map<String, SupervisedService> services = new LinkedHashMap<>();
    private final Path stateDir;
    private final Supplier<BuildUser> user;
    private final ServiceProcesses processes = new ServiceProcesses(Path.of("/proc"));
    private final Map<String, String> labels;
    private final ExecutorService pumps = Executors.newCachedThreadPool(r -> {
        Thread t = new Thread(r, "kiln-service-output");
        t.setDaemon(true);
        return t;
    });

    /**
     * Opens the services' logs and ends what an earlier run of this agent left of its services.
     *
     * @param labels the instance's labels, which reach each service as KILN_LABEL_* variables
     * @param user   resolves the build user (at each start, so a missing user is the service's failure)
     */
    public ServiceSupervisor(List<ServiceSettings> settings, Map<String, String> labels, Path stateDir,
                             ProcessLauncher launcher, Supplier<BuildUser> user, ServicePolicy policy, Clock clock)
            throws IOException {
        this.stateDir = stateDir;
        this.user = user;
        this.labels = Map.copyOf(labels);
        for (ServiceSettings s : settings) {
            RotatingLog log = s.command() == null ? null
                    : RotatingLog.open(stateDir.resolve("services").resolve(s.name()), policy.logCap());
            Map<String, String> env = new LinkedHashMap<>(environment(labels));
            env.put("KILN_SERVICE", s.name());
            env.put(ServiceProcesses.MARKER, markerOf(s.name()));
            services.put(s.name(), new SupervisedService(s, log, launcher, user, WorkDirectory.of(stateDir), env,
                    markerOf(s.name()), policy, clock, processes, pumps));
        }
        endLeftovers();
    }

    /** The variables the instance's labels become, for the boot script and every service. */
    public static Map<String, String> environment(Map<String, String> labels) {
        Map<String, String> env = new LinkedHashMap<>();
        labels.forEach((k, v) -> env.put(LabelSettings.envName(k), v));
        return env;
    }

    /** The instance's labels. */
    public Map<String, String> labels() {
        return labels;
    }

    /** Marks this agent's processes of one service: its state directory tells two local agents apart. */
    private String markerOf(String name) {
        return stateDir.toAbsolutePath().normalize() + ":" + name;
    }

    /** A stopped or crashed agent leaves its services running; they would hold the ports: end them. */
    private void endLeftovers() {
        int uid;
        try {
            uid = user.get().uid();
        } catch (RuntimeException e) {
            return; // no build user: none of its processes can be running
        }
        for (SupervisedService s : services.values()) {
            if (s.settings().command() == null) {
                continue;
            }
            List<Long> left = processes.find(markerOf(s.settings().name()), uid, 0);
            if (left.isEmpty()) {
                continue;
            }
            LOG.warn("service {} still has processes from before the agent started ({}); stopping them",
                    s.settings().name(), left);
            String marker = markerOf(s.settings().name());
            left.forEach(pid -> processes.signal(pid, marker, uid, false));
            for (Long pid : left) {
                ProcessHandle.of(pid).ifPresent(h -> {
                    try {
                        h.onExit().get(5, java.util.concurrent.TimeUnit.SECONDS);
                    } catch (Exception e) {
                        processes.signal(pid, marker, uid, true);
                    }
                });
            }
        }
    }

    /** Starts every service that has a command (the boot script succeeded, or there is none). */
    public void startAll() {
        if (services.values().stream().allMatch(s -> s.settings().command() == null)) {
            return;
        }
        try {
            WorkDirectory.prepare(stateDir, user.get());
        } catch (IOException | RuntimeException e) {
            failAll("cannot prepare the work directory " + WorkDirectory.of(stateDir) + ": "
                    + (e.getMessage() == null ? e.toString() : e.getMessage()));
            return;
        }
        services.values().forEach(SupervisedService::start);
    }

    /** Gives up every service that waits to start; {@code why} becomes each one's detail. */
    public void failAll(String why) {
        services.values().forEach(s -> s.fail(why));
    }

    /** Names of the services with a command, for messages. */
    public List<String> commandNames() {
        return services.values().stream().filter(s -> s.settings().command() != null).map(s -> s.settings().name()).toList();
    }

    /**
     * Stops every service for good (TERM to its process group, KILL after {@code grace}).
     *
     * @return one line per service that was running or waiting
     */
    public List<String> stopAll(Duration grace) {
        // In parallel, each on a thread of its own: each may take the whole grace, and a second
        // call (the agent's stop after a drain) must work after the pumps are shut down.
        List<java.util.concurrent.CompletableFuture<String>> stops = new ArrayList<>();
        for (SupervisedService s : services.values()) {
            stops.add(java.util.concurrent.CompletableFuture.supplyAsync(() -> s.stop(grace), r -> {
                Thread t = new Thread(r, "kiln-service-stop");
                t.setDaemon(true);
                t.start();
            }));
        }
        return stops.stream().map(java.util.concurrent.CompletableFuture::join).filter(Objects::nonNull).toList();
    }

    /** Every service's status, in configured order. */
    public List<ServiceStatus> statuses() {
        return services.values().stream().map(SupervisedService::status).toList();
    }

    /** The log of a service, for streaming. */
    public RotatingLog log(String name) {
        SupervisedService s = services.get(name);
        if (s == null) {
            throw ServiceNotFoundException.named(name, List.copyOf(services.keySet()));
        }
        if (s.log() == null) {
            throw new ServiceNotFoundException("service '" + name + "' has no log: it has no command (kiln.services"
                    + " declares its port only; whatever serves it logs elsewhere)");
        }
        return s.log();
    }

    /** Why services keep the agent from being idle: those with keeps-alive that run. */
    public List<String> busyReasons() {
        return services.values().stream().filter(SupervisedService::busy)
                .map(s -> "service " + s.settings().name() + " running (keeps-alive)").toList();
    }

    /** The declared ports, in configured order. */
    public List<Integer> ports() {
        return services.values().stream().map(s -> s.settings().port()).toList();
    }

    /** Stops the services (the agent stops) and closes their logs. */
    @Override
    public void close() {
        stopAll(Duration.ofSeconds(5));
        pumps.shutdown();
        for (SupervisedService s : services.values()) {
            if (s.log() != null) {
                try {
                    s.log().close();
                } catch (IOException e) {
                    LOG.warn("cannot close the log of service {}: {}", s.settings().name(), e.toString());
                }
            }
        }
    }
}
