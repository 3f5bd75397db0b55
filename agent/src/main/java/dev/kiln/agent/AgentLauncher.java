package dev.kiln.agent;

import dev.kiln.agent.config.AgentMode;
import dev.kiln.agent.config.AgentSettings;
import dev.kiln.agent.logs.AgentLogFile;
import org.slf4j.LoggerFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import dev.kiln.agent.config.SettingsCatalog;
import dev.kiln.agent.config.TlsSettings;
import dev.kiln.agent.tls.MutualTls;
import dev.kiln.agent.instance.InstanceIdentity;
import dev.kiln.agent.instance.MetadataSource;
import dev.kiln.agent.instance.SdkMetadataSource;
import dev.kiln.agent.instance.UserData;
import dev.kiln.agent.status.AgentInfo;
import dev.kiln.agent.volume.BootMounts;
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

    private final Map<String, String> env;
    private final PrintStream err;
    private final CountDownLatch stopped = new CountDownLatch(1);

    public AgentLauncher(Map<String, String> env, PrintStream err) {
        this.env = env;
        this.err = err;
    }

    /** Runs the agent until the JVM is asked to stop; returns the process exit code. */
    public int run() {
        Optional<PropertySource> userData;
        InstanceIdentity identity;
        try {
            AgentMode mode = validateAndReadMode();
            if (mode == AgentMode.EC2) {
                identity = ec2Identity();
                userData = identity.userData().flatMap(UserData::settings).map(settings -> {
                    List<String> problems = SettingsCatalog.problems("EC2 user data", settings);
                    if (!problems.isEmpty()) {
                        throw new ConfigurationProblem(problems);
                    }
                    return PropertySource.of("ec2-user-data", settings, USER_DATA_ORDER);
                });
            } else {
                identity = InstanceIdentity.local(AgentInfo.localHostname());
                userData = Optional.empty();
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

        ApplicationContext context;
        try {
            var builder = ApplicationContext.builder()
                    .banner(false)
                    .deduceEnvironment(false)
                    .singletons(identity);
            userData.ifPresent(builder::propertySources);
            context = builder.start();
        } catch (RuntimeException e) {
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
        try {
            // Check the TLS material first, so a missing or broken file is reported by its setting.
            MutualTls.serverContext(context.getBean(TlsSettings.class));
        } catch (IllegalArgumentException e) {
            err.println("kiln-agent: configuration error: " + e.getMessage());
            context.close();
            return EXIT_CONFIG;
        }
        // The lease settings are checked before any volume is touched: a configuration error must
        // stop the agent before a boot mount could format anything.
        dev.kiln.agent.lease.LeaseKeeper keeper;
        try {
            keeper = context.getBean(dev.kiln.agent.lease.LeaseKeeper.class);
        } catch (RuntimeException e) {
            err.println("kiln-agent: configuration error: " + rootMessage(e));
            context.close();
            return EXIT_CONFIG;
        }
        // Boot-time mounts come before the server accepts requests, so nothing can use a mount
        // point that is not mounted yet. A failed mount is logged and reported by ListVolumes;
        // the agent keeps serving so that it can be seen and fixed.
        try {
            context.getBean(BootMounts.class).run();
        } catch (RuntimeException e) {
            err.println("kiln-agent: cannot set up volumes: " + describe(e));
            context.close();
            return EXIT_CONFIG;
        }
        try {
            context.getBean(dev.kiln.agent.serve.Serving.class).start();
        } catch (IllegalArgumentException e) {
            err.println("kiln-agent: configuration error: " + e.getMessage());
            context.close();
            return EXIT_CONFIG;
        } catch (IOException | RuntimeException e) {
            err.println("kiln-agent: cannot start the SSH server: " + describe(e));
            context.close();
            return EXIT_UNAVAILABLE;
        }
        try {
            EmbeddedServer server = context.getBean(EmbeddedServer.class);
            server.start();
            AgentInfo info = context.getBean(AgentInfo.class);
            String ready = "kiln-agent " + info.agentVersion() + " (" + identity.mode().settingValue() + ", "
                    + identity.instanceId() + ") listening on " + server.getHost() + ":" + server.getPort()
                    + " (gRPC, mutual TLS)";
            LoggerFactory.getLogger(AgentLauncher.class).info(ready);
            keeper.start();
        } catch (RuntimeException e) {
            err.println("kiln-agent: cannot start the gRPC server: " + describe(e));
            context.close();
            return EXIT_UNAVAILABLE;
        }
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            // Interrupt builds first: their log streams then end at once with the builds' final
            // records, instead of holding the gRPC server's shutdown until the builds finish.
            context.getBean(dev.kiln.agent.build.BuildManager.class).close();
            context.close();
            stopped.countDown();
        }, "kiln-agent-shutdown"));
        try {
            stopped.await();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        return 0;
    }

    /** Validates every settings source Micronaut found, and KILN_* environment variables. */
    private AgentMode validateAndReadMode() {
        List<String> problems = new ArrayList<>();
        try (ApplicationContext settingsOnly = ApplicationContext.builder()
                .banner(false).deduceEnvironment(false).build()) {
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
        try (ApplicationContext settingsOnly = ApplicationContext.builder()
                .banner(false).deduceEnvironment(false).build()) {
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

    /** Problems found in the settings, reported together. */
    static final class ConfigurationProblem extends RuntimeException {
        private final List<String> problems;

        ConfigurationProblem(List<String> problems) {
            super(String.join("; ", problems));
            this.problems = problems;
        }
    }
}
