package dev.kiln.agent;

import dev.kiln.agent.config.AgentDefaults;
import dev.kiln.agent.config.AgentMode;
import dev.kiln.agent.config.AgentSettings;
import dev.kiln.agent.logs.AgentLogFile;
import org.slf4j.LoggerFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import dev.kiln.agent.config.SettingsCatalog;
import dev.kiln.agent.config.TlsSettings;
import dev.kiln.agent.tls.MutualTls;
import dev.kiln.agent.instance.ImdsRootOnly;
import dev.kiln.agent.instance.InstanceIdentity;
import dev.kiln.agent.instance.MetadataSource;
import dev.kiln.agent.instance.SdkMetadataSource;
import dev.kiln.agent.instance.UserData;
import dev.kiln.agent.status.AgentInfo;
import dev.kiln.agent.volume.BootMounts;
import dev.kiln.agent.build.BootBuild;
import dev.kiln.agent.status.Problems;
import dev.kiln.tls.GrpcTls;
import io.micronaut.context.ApplicationContext;
import io.micronaut.context.env.Environment;
import io.micronaut.context.env.EnvironmentPropertySource;
import io.micronaut.context.env.PropertySource;
import io.micronaut.context.env.SystemPropertiesPropertySource;
import io.micronaut.runtime.server.EmbeddedServer;

import java.io.IOException;
import java.io.PrintStream;
import java.net.URI;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CountDownLatch;

/**
 * Starts kiln-agent: validates every source of settings, establishes the instance's identity
 * (IMDSv2 in ec2 mode), then starts the Micronaut context and its gRPC server. Any problem stops
 * start-up with one message that names the setting and what to do.
 */
public final class AgentLauncher {

    /** sysexits' EX_CONFIG: the configuration is wrong; restarting will not help. */
    public static final int EXIT_CONFIG = 78;
    /** sysexits' EX_UNAVAILABLE: a service the agent needs (IMDS, the port) is not available. */
    public static final int EXIT_UNAVAILABLE = 69;

    /**
     * Precedence of user data: above the config file(s), below environment variables, which
     * Micronaut orders at {@link EnvironmentPropertySource#POSITION} (higher order wins).
     */
    static final int USER_DATA_ORDER = EnvironmentPropertySource.POSITION - 1;

    /** How settings from user data are named in messages. */
    static final String USER_DATA = "EC2 user data";
    /** kiln.lease.fallback-ttl's default. */
    static final String DEFAULT_FALLBACK_TTL = "30m";
    /** User data settings a degraded agent keeps (each only if valid): what it needs to be reached. */
    private static final java.util.Set<String> KEPT_WHEN_DEGRADED = java.util.Set.of(
            "kiln.tls.cert", "kiln.tls.key", "kiln.tls.ca", "kiln.grpc.host", "kiln.grpc.port", "kiln.name");

    private final Map<String, String> env;
    private final PrintStream err;
    private final CountDownLatch stopped = new CountDownLatch(1);

    public AgentLauncher(Map<String, String> env, PrintStream err) {
        this.env = env;
        this.err = err;
    }

    /** Runs the agent until the JVM is asked to stop; returns the process exit code. */
    public int run() {
        try {
            // A JVM option of the image (AGENT_JAVA_OPTS), so never the user data's fault.
            GrpcTls.requested();
        } catch (IllegalArgumentException e) {
            err.println("kiln-agent: configuration error: " + e.getMessage() + " (set in AGENT_JAVA_OPTS)");
            return EXIT_CONFIG;
        }
        // Not GrpcTls.preload() here: measured, it did not start the agent sooner (both cores are
        // busy at start-up) and its thread's malloc arena kept 8 MiB more resident.
        InstanceIdentity identity;
        Map<String, Object> userDataSettings = Map.of();
        List<String> userDataProblems = List.of();
        try {
            AgentMode mode = validateAndReadMode();
            if (mode == AgentMode.EC2) {
                identity = ec2Identity();
                try {
                    userDataSettings = identity.userData().flatMap(UserData::settings).orElse(Map.of());
                    userDataProblems = SettingsCatalog.problems(USER_DATA, userDataSettings);
                } catch (IllegalArgumentException e) {
                    userDataProblems = List.of(e.getMessage());
                }
            } else {
                identity = InstanceIdentity.local(AgentInfo.localHostname());
            }
        } catch (ConfigurationProblem e) {
            e.problems.forEach(p -> err.println("kiln-agent: configuration error: " + p));
            return EXIT_CONFIG;
        } catch (IllegalArgumentException e) {
            err.println("kiln-agent: configuration error: " + e.getMessage());
            return EXIT_CONFIG;
        } catch (IOException e) {
            err.println("kiln-agent: " + e.getMessage());
            return EXIT_UNAVAILABLE;
        }
        if (!userDataProblems.isEmpty()) {
            return degraded(identity, userDataProblems, userDataSettings);
        }
        Optional<PropertySource> userData = userDataSettings.isEmpty() ? Optional.empty()
                : Optional.of(PropertySource.of("ec2-user-data", userDataSettings, USER_DATA_ORDER));
        try {
            return start(identity, userData, Problems.none());
        } catch (UserDataUnusable e) {
            // The settings passed every check one by one but not together (the lease, the TLS
            // material, a type the binding refused), or the user data has none: in ec2 mode that
            // is the user data's problem as much as a typo is, and the instance must still end.
            return degraded(identity, List.of(e.getMessage()), userDataSettings);
        }
    }

    /**
     * Starts the agent with these settings. In ec2 mode, a configuration error throws
     * {@link UserDataUnusable} (so the caller can run degraded) instead of returning
     * {@link #EXIT_CONFIG}; a degraded start that cannot use its TLS material runs on its lease
     * without the gRPC server.
     */
    private int start(InstanceIdentity identity, Optional<PropertySource> settings, Problems problems) {
        boolean degraded = problems.degraded();
        // In ec2 mode the user data completes the image's settings (TLS, lease): when the whole
        // cannot be used, the user data is what is wrong or missing, and the instance must still end.
        boolean blameUserData = !degraded && identity.mode() == AgentMode.EC2;
        String userData = settings.isPresent() ? USER_DATA + ": "
                : "the EC2 user data has no kiln settings (kiln launch writes them): ";
        ApplicationContext context;
        try {
            var builder = AgentDefaults.contextBuilder().singletons(identity, problems);
            settings.ifPresent(builder::propertySources);
            context = builder.start();
        } catch (RuntimeException e) {
            if (blameUserData) {
                throw new UserDataUnusable(userData + describe(e));
            }
            err.println("kiln-agent: start-up failed: " + describe(e));
            return EXIT_CONFIG;
        }
        try {
            Path stateDir = context.getBean(AgentSettings.class).stateDir();
            Files.createDirectories(stateDir);
            AgentLogFile.attach(AgentLogFile.of(stateDir));
        } catch (IOException | RuntimeException e) {
            err.println("kiln-agent: cannot use the state directory (kiln.state-dir): " + describe(e));
            context.close();
            return EXIT_CONFIG;
        }
        var log = LoggerFactory.getLogger(AgentLauncher.class);
        String tlsProblem = null;
        try {
            // Check the TLS material first, so a missing or broken file is reported by its setting.
            MutualTls.serverContext(context.getBean(TlsSettings.class));
        } catch (IllegalArgumentException e) {
            if (blameUserData) {
                context.close();
                throw new UserDataUnusable(userData + e.getMessage());
            }
            if (!degraded) {
                err.println("kiln-agent: configuration error: " + e.getMessage());
                context.close();
                return EXIT_CONFIG;
            }
            tlsProblem = e.getMessage();
        }
        // The lease settings are checked before any volume is touched: a configuration error must
        // stop the agent before a boot mount could format anything.
        dev.kiln.agent.lease.LeaseKeeper keeper;
        try {
            keeper = context.getBean(dev.kiln.agent.lease.LeaseKeeper.class);
        } catch (RuntimeException e) {
            context.close();
            if (blameUserData) {
                throw new UserDataUnusable(userData + rootMessage(e));
            }
            err.println("kiln-agent: configuration error: " + rootMessage(e));
            return EXIT_CONFIG;
        }
        if (identity.mode() == AgentMode.EC2) {
            // The user data holds this agent's TLS key: only root may reach IMDS. Checked before the
            // boot build and the gRPC server, so Status reports the outcome from its first answer; a
            // problem is reported, never a reason to stop (ImdsRootOnly).
            context.getBean(ImdsRootOnly.class).checkAtStart();
        }
        BootBuild bootBuild = context.getBean(BootBuild.class);
        if (degraded) {
            // Nothing of the user data's intent is carried out: no volume is touched, no build runs.
            bootBuild.notStarted("the agent runs degraded (its settings are unusable; see kiln status)");
        } else {
            // Boot-time mounts come before the server accepts requests, so nothing can use a mount
            // point that is not mounted yet. A failed mount is logged and reported by ListVolumes;
            // the agent keeps serving so that it can be seen and fixed. In ec2 mode nothing here
            // exits: the lease below must start, so a failure is reported by kiln status instead.
            boolean ec2 = identity.mode() == AgentMode.EC2;
            java.util.function.Consumer<String> report = message -> {
                err.println("kiln-agent: " + message);
                try {
                    context.getBean(dev.kiln.agent.volume.VolumeService.class).reportBootProblem(message);
                } catch (RuntimeException e) {
                    // no volume service to report through: the journal has it
                }
            };
            BootMounts mounts = null;
            try {
                mounts = context.getBean(BootMounts.class);
                mounts.run();
            } catch (RuntimeException e) {
                String message = "cannot set up volumes: " + describe(e);
                if (!ec2) {
                    err.println("kiln-agent: " + message);
                    context.close();
                    return EXIT_CONFIG;
                }
                report.accept(message + "; nothing was mounted, no boot build runs and nothing is served over SSH");
                bootBuild.notStarted("the boot mounts could not be set up (" + describe(e) + ")");
            }
            if (mounts != null) {
                // The boot build starts once the mounts are there (or is refused, and says why, when
                // its work tree's mount failed). It is an ordinary build from here on.
                bootBuild.run(mounts.failures());
                try {
                    context.getBean(dev.kiln.agent.serve.Serving.class).start(mounts.failures());
                } catch (dev.kiln.agent.serve.Serving.NotServing e) {
                    // Uploads must not land on the root disk under a failed mount: no SSH until it is fixed.
                    report.accept(e.getMessage());
                } catch (IllegalArgumentException e) {
                    if (!ec2) {
                        err.println("kiln-agent: configuration error: " + e.getMessage());
                        context.close();
                        return EXIT_CONFIG;
                    }
                    report.accept("not serving over SSH: configuration error: " + e.getMessage());
                } catch (IOException | RuntimeException e) {
                    if (!ec2) {
                        err.println("kiln-agent: cannot start the SSH server: " + describe(e));
                        context.close();
                        return EXIT_UNAVAILABLE;
                    }
                    report.accept("not serving over SSH: cannot start the SSH server: " + describe(e));
                }
            }
        }
        String ending = keeper.lease().deadline().map(d -> "it ends the instance at " + d + " (its lease)")
                .orElse("its lease has no deadline");
        if (tlsProblem != null) {
            // Unreachable over gRPC, but still on a lease: the journal is the only place to look.
            String message = "kiln-agent: cannot serve gRPC, so kiln status cannot reach this agent: " + tlsProblem
                    + "; " + ending + "; see the journal (journalctl -u kiln-agent) for the problems above";
            err.println(message);
            keeper.start();
        } else {
            try {
                EmbeddedServer server = context.getBean(EmbeddedServer.class);
                server.start();
                AgentInfo info = context.getBean(AgentInfo.class);
                String ready = "kiln-agent " + info.agentVersion() + " (" + identity.mode().settingValue() + ", "
                        + identity.instanceId() + ") listening on " + server.getHost() + ":" + server.getPort()
                        + " (gRPC, mutual TLS)" + (degraded ? " DEGRADED: kiln status shows why; " + ending : "");
                log.info(ready);
                keeper.start();
            } catch (RuntimeException e) {
                err.println("kiln-agent: cannot start the gRPC server: " + describe(e));
                if (identity.mode() != AgentMode.EC2) {
                    context.close();
                    return EXIT_UNAVAILABLE;
                }
                // Unreachable, but the instance must still end: run on the lease alone.
                err.println("kiln-agent: kiln status cannot reach this agent; " + ending
                        + "; see the journal (journalctl -u kiln-agent)");
                keeper.start();
            }
        }
        var grpcLoops = context.getBean(dev.kiln.agent.api.GrpcServerEventLoops.class);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            // Interrupt builds first: their log streams then end at once with the builds' final
            // records, instead of holding the gRPC server's shutdown until the builds finish.
            context.getBean(dev.kiln.agent.build.BuildManager.class).close();
            context.close();
            // After the server: no event loop thread may be left in epoll_wait when the JVM exits.
            grpcLoops.shutdown();
            stopped.countDown();
        }, "kiln-agent-shutdown"));
        try {
            stopped.await();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        return 0;
    }

    /**
     * Runs an ec2-mode agent whose user data cannot be used. Exiting with a configuration error
     * would leave the instance running forever (nothing else ends it: the lease is the agent's),
     * so it prints what is wrong, then keeps only what it needs to be reachable (the user data's
     * TLS and gRPC settings, where each is valid on its own) and to end on time: the lease is the
     * user data's kiln.lease.ttl if that is valid, else agent.yml's (or the environment's), else
     * kiln.lease.fallback-ttl (30m); it cannot be extended. No boot mount, boot build or SSH.
     */
    private int degraded(InstanceIdentity identity, List<String> problems, Map<String, Object> userData) {
        problems.forEach(p -> err.println("kiln-agent: configuration error: " + p));
        Map<String, Object> kept = new LinkedHashMap<>();
        userData.forEach((key, value) -> {
            if (KEPT_WHEN_DEGRADED.contains(key) && SettingsCatalog.problems(USER_DATA, Map.of(key, value)).isEmpty()) {
                kept.put(key, value);
            }
        });
        Duration ttl;
        String from;
        Object userTtl = userData.get("kiln.lease.ttl");
        if (userTtl != null && SettingsCatalog.isPositiveDuration(String.valueOf(userTtl))) {
            ttl = SettingsCatalog.parseDuration(String.valueOf(userTtl));
            from = "kiln.lease.ttl in the user data";
        } else {
            try (ApplicationContext settingsOnly = AgentDefaults.contextBuilder().build()) {
                Environment environment = settingsOnly.getEnvironment();
                environment.start();
                Optional<String> configured = environment.getProperty("kiln.lease.ttl", String.class).filter(SettingsCatalog::isPositiveDuration);
                if (configured.isPresent()) {
                    ttl = SettingsCatalog.parseDuration(configured.get());
                    from = "kiln.lease.ttl in agent.yml or the environment";
                } else {
                    ttl = SettingsCatalog.parseDuration(environment.getProperty("kiln.lease.fallback-ttl", String.class)
                            .orElse(DEFAULT_FALLBACK_TTL));
                    from = "kiln.lease.fallback-ttl: no usable kiln.lease.ttl";
                }
            }
        }
        err.println("kiln-agent: the EC2 user data cannot be used, so the agent runs degraded: no boot mounts, no boot"
                + " build, no SSH; it ends the instance " + ttl + " after its first start (" + from + "). Fix the user"
                + " data (kiln launch writes it; see README: kiln-agent) and launch a new instance.");
        Map<String, Object> fallback = new LinkedHashMap<>();
        fallback.put("kiln.lease.ttl", ttl.toString());
        fallback.put("kiln.lease.max-lifetime", ttl.toString());
        fallback.put("kiln.lease.forever", "false");
        fallback.put("kiln.ssh.enabled", "false");
        // Below the environment (a KILN_* drop-in still wins), above the kept user data settings.
        PropertySource settings = PropertySource.of("ec2-user-data-degraded", merge(kept, fallback), USER_DATA_ORDER);
        return start(identity, Optional.of(settings), new Problems(problems));
    }

    private static Map<String, Object> merge(Map<String, Object> a, Map<String, Object> b) {
        Map<String, Object> m = new LinkedHashMap<>(a);
        m.putAll(b);
        return m;
    }

    /** Validates every settings source Micronaut found, and KILN_* environment variables. */
    private AgentMode validateAndReadMode() {
        List<String> problems = new ArrayList<>();
        try (ApplicationContext settingsOnly = AgentDefaults.contextBuilder().build()) {
            Environment environment = settingsOnly.getEnvironment();
            environment.start();
            for (PropertySource source : environment.getPropertySources()) {
                if (source.getName().equals(EnvironmentPropertySource.NAME)
                        || source.getName().equals(SystemPropertiesPropertySource.NAME)) {
                    continue;
                }
                Map<String, Object> values = new LinkedHashMap<>();
                for (String key : source) {
                    values.put(key, source.get(key));
                }
                problems.addAll(SettingsCatalog.problems(describeSource(source), values));
            }
            problems.addAll(SettingsCatalog.environmentProblems(env));
            if (!problems.isEmpty()) {
                throw new ConfigurationProblem(problems);
            }
            return environment.getProperty("kiln.mode", String.class).map(AgentMode::parse).orElse(AgentMode.LOCAL);
        }
    }

    private InstanceIdentity ec2Identity() throws IOException {
        String endpoint = env.getOrDefault("KILN_IMDS_ENDPOINT", null);
        Duration timeout = SettingsCatalog.parseDuration(env.getOrDefault("KILN_IMDS_TIMEOUT", "30s"));
        try (ApplicationContext settingsOnly = AgentDefaults.contextBuilder().build()) {
            Environment environment = settingsOnly.getEnvironment();
            environment.start();
            endpoint = environment.getProperty("kiln.imds.endpoint", String.class).orElse(endpoint);
            timeout = environment.getProperty("kiln.imds.timeout", String.class)
                    .map(SettingsCatalog::parseDuration).orElse(timeout);
        }
        Instant giveUp = Instant.now().plus(timeout);
        IOException last = null;
        try (MetadataSource imds = new SdkMetadataSource(endpoint == null ? null : URI.create(endpoint), timeout)) {
            // IMDS can lag behind early boot for a moment; retry within a bounded budget.
            while (true) {
                try {
                    return imds.identity();
                } catch (IOException e) {
                    last = e;
                }
                if (Instant.now().isAfter(giveUp)) {
                    throw new IOException("cannot read instance identity from IMDSv2 at "
                            + (endpoint == null ? "the default endpoint" : endpoint) + " within " + timeout
                            + " (kiln.mode is ec2; use kiln.mode: local off EC2): " + last.getMessage(), last);
                }
                try {
                    Thread.sleep(500);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    throw new IOException("interrupted while waiting for IMDS", e);
                }
            }
        }
    }

    private static String describeSource(PropertySource source) {
        String name = source.getName();
        return name.contains("/") || name.endsWith(".yml") || name.endsWith(".yaml") ? name : "settings source '" + name + "'";
    }

    /** The innermost message: the one that names the setting. */
    static String rootMessage(Throwable e) {
        Throwable root = e;
        while (root.getCause() != null && root.getCause() != root) {
            root = root.getCause();
        }
        return root.getMessage() == null ? root.toString() : root.getMessage();
    }

    /** The first line of the outermost message and the root cause's message. */
    static String describe(Throwable e) {
        Throwable root = e;
        while (root.getCause() != null && root.getCause() != root) {
            root = root.getCause();
        }
        String top = e.getMessage() == null ? e.toString() : e.getMessage().lines().findFirst().orElse("");
        if (root == e) {
            return top;
        }
        String cause = root.getMessage() == null ? root.toString() : root.getMessage().lines().findFirst().orElse("");
        return top.contains(cause) ? top : top + ": " + cause;
    }

    /** The user data's settings passed each check but cannot be used together. */
    static final class UserDataUnusable extends RuntimeException {
        UserDataUnusable(String message) {
            super(message);
        }
    }

    /** Problems found in the settings, reported together. */
    static final class ConfigurationProblem extends RuntimeException {
        private final List<String> problems;

        ConfigurationProblem(List<String> problems) {
            super(String.join("; ", problems));
            this.problems = problems;
        }
    }
}
