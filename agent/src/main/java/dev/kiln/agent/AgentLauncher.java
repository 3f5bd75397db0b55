package dev.kiln.agent;

import dev.kiln.agent.startup.AgentDefaults;
import dev.kiln.agent.config.AgentMode;
import dev.kiln.agent.config.SettingException;
import dev.kiln.agent.config.SettingsCatalog;
import dev.kiln.agent.instance.ImdsIdentity;
import dev.kiln.agent.instance.InstanceIdentity;
import dev.kiln.agent.instance.UserData;
import dev.kiln.agent.startup.AgentStartup;
import dev.kiln.agent.startup.Console;
import dev.kiln.agent.startup.DegradedMode;
import dev.kiln.agent.startup.Messages;
import dev.kiln.agent.startup.StartupFailure;
import dev.kiln.agent.startup.UserDataUnusable;
import dev.kiln.agent.status.AgentInfo;
import dev.kiln.agent.status.Problems;
import dev.kiln.tls.GrpcTls;
import io.micronaut.context.ApplicationContext;
import io.micronaut.context.env.Environment;
import io.micronaut.context.env.EnvironmentPropertySource;
import io.micronaut.context.env.PropertySource;
import io.micronaut.context.env.SystemPropertiesPropertySource;

import java.io.IOException;
import java.io.PrintStream;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CountDownLatch;

/**
 * Starts kiln-agent in one application context: validates every source of settings in its
 * environment, establishes the instance's identity (IMDSv2 in ec2 mode) and adds the user data's
 * settings, then starts the context, whose {@link AgentStartup} runs the steps in order. Any
 * problem stops start-up with one message that names the setting and what to do, or, in ec2
 * mode, is handled as {@link DegradedMode} says.
 */
public final class AgentLauncher {

    /** sysexits' EX_CONFIG: the configuration is wrong; restarting will not help. */
    public static final int EXIT_CONFIG = StartupFailure.EXIT_CONFIG;
    /** sysexits' EX_UNAVAILABLE: a service the agent needs (IMDS, the port) is not available. */
    public static final int EXIT_UNAVAILABLE = StartupFailure.EXIT_UNAVAILABLE;

    /**
     * Precedence of user data: above the config file(s), below environment variables, which
     * Micronaut orders at {@link EnvironmentPropertySource#POSITION} (higher order wins).
     */
    static final int USER_DATA_ORDER = EnvironmentPropertySource.POSITION - 1;

    private final Map<String, String> env;
    private final Console console;
    private final CountDownLatch stopped = new CountDownLatch(1);

    public AgentLauncher(Map<String, String> env, PrintStream err) {
        this.env = env;
        this.console = new Console(err);
    }

    /** Runs the agent until the JVM is asked to stop; returns the process exit code. */
    public int run() {
        try {
            // A JVM option of the image (AGENT_JAVA_OPTS), so never the user data's fault.
            GrpcTls.requested();
        } catch (IllegalArgumentException e) {
            console.print("configuration error: " + e.getMessage() + " (set in AGENT_JAVA_OPTS)");
            return EXIT_CONFIG;
        }
        // Not GrpcTls.preload() here: measured, it did not start the agent sooner (both cores are
        // busy at start-up) and its thread's malloc arena kept 8 MiB more resident.
        ApplicationContext context = AgentDefaults.contextBuilder().build();
        InstanceIdentity identity;
        Map<String, Object> userDataSettings = Map.of();
        List<String> userDataProblems = List.of();
        // Read before the user data is added: what a degraded agent falls back to.
        Optional<String> configuredTtl;
        Optional<String> fallbackTtl;
        try {
            Environment environment = context.getEnvironment().start();
            AgentMode mode = validateAndReadMode(environment);
            configuredTtl = environment.getProperty("kiln.lease.ttl", String.class);
            fallbackTtl = environment.getProperty("kiln.lease.fallback-ttl", String.class);
            if (mode == AgentMode.EC2) {
                identity = ec2Identity(environment);
                try {
                    userDataSettings = identity.userData().flatMap(UserData::settings).orElse(Map.of());
                    userDataProblems = SettingsCatalog.problems(DegradedMode.USER_DATA, userDataSettings);
                } catch (IllegalArgumentException e) {
                    userDataProblems = List.of(e.getMessage());
                }
            } else {
                // The local provider names its instances; an agent started by hand is named after its host.
                String id = environment.getProperty("kiln.instance-id", String.class).orElse(null);
                identity = id != null ? new InstanceIdentity(AgentMode.LOCAL, id, "", java.util.Optional.empty())
                        : InstanceIdentity.local(AgentInfo.localHostname());
            }
        } catch (ConfigurationProblem e) {
            context.close();
            e.problems.forEach(p -> console.print("configuration error: " + p));
            return EXIT_CONFIG;
        } catch (IllegalArgumentException e) {
            context.close();
            console.print("configuration error: " + e.getMessage());
            return EXIT_CONFIG;
        } catch (IOException e) {
            context.close();
            console.print(e.getMessage());
            return EXIT_UNAVAILABLE;
        }
        if (!userDataProblems.isEmpty()) {
            return degraded(context, identity, userDataProblems, userDataSettings, configuredTtl, fallbackTtl);
        }
        Optional<PropertySource> userData = userDataSettings.isEmpty() ? Optional.empty()
                : Optional.of(PropertySource.of("ec2-user-data", userDataSettings, USER_DATA_ORDER));
        try {
            return start(context, identity, userData, Problems.none());
        } catch (UserDataUnusable e) {
            // The instance must still end: start again, degraded, in a context of its own (the
            // failed one has bound the unusable settings).
            return degraded(AgentDefaults.contextBuilder().build(), identity, List.of(e.getMessage()), userDataSettings,
                    configuredTtl, fallbackTtl);
        }
    }

    /**
     * Starts the context with these settings and waits until the JVM is asked to stop. In ec2 mode,
     * settings that cannot be used together throw {@link UserDataUnusable}, so the caller can run
     * degraded.
     */
    private int start(ApplicationContext context, InstanceIdentity identity, Optional<PropertySource> settings,
                      Problems problems) {
        DegradedMode policy = new DegradedMode(identity.mode(), problems.degraded(), settings.isPresent());
        context.registerSingleton(identity).registerSingleton(problems).registerSingleton(policy).registerSingleton(console);
        settings.ifPresent(source -> {
            // A running environment would put a new source above all others, the environment
            // variables included; stopped, it reads its sources again at start, in their order.
            Environment environment = context.getEnvironment();
            environment.stop();
            environment.addPropertySource(source);
        });
        try {
            context.start();
        } catch (RuntimeException e) {
            closeQuietly(context);
            Optional<StartupFailure> failure = cause(e, StartupFailure.class);
            if (failure.isPresent()) {
                console.print(failure.get().getMessage());
                return failure.get().exitCode();
            }
            // A settings record refused a value the sources' check does not read: a -D system
            // property of the image (AGENT_JAVA_OPTS), so never the user data's fault.
            Optional<SettingException> setting = cause(e, SettingException.class);
            if (setting.isPresent()) {
                console.print("configuration error: " + setting.get().getMessage() + " (a -D option, set in AGENT_JAVA_OPTS)");
                return EXIT_CONFIG;
            }
            Optional<UserDataUnusable> unusable = cause(e, UserDataUnusable.class);
            RuntimeException outcome = unusable.isPresent() ? unusable.get()
                    : policy.unusable("start-up failed", Messages.describe(e));
            if (outcome instanceof StartupFailure f) {
                console.print(f.getMessage());
                return f.exitCode();
            }
            throw outcome;
        }
        // A plain application context has no shutdown hook of its own.
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
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

    /** Runs an ec2-mode agent whose user data cannot be used, on {@link DegradedMode#fallback} settings. */
    private int degraded(ApplicationContext context, InstanceIdentity identity, List<String> problems,
                         Map<String, Object> userData, Optional<String> configuredTtl, Optional<String> fallbackTtl) {
        problems.forEach(p -> console.print("configuration error: " + p));
        DegradedMode.Fallback fallback = DegradedMode.fallback(userData, configuredTtl, fallbackTtl);
        console.print(fallback.message());
        // Below the environment (a KILN_* drop-in still wins), where the user data would be.
        PropertySource settings = PropertySource.of("ec2-user-data-degraded", fallback.settings(), USER_DATA_ORDER);
        return start(context, identity, Optional.of(settings), new Problems(problems));
    }

    /** Validates every settings source Micronaut found, and KILN_* environment variables. */
    private AgentMode validateAndReadMode(Environment environment) {
        List<String> problems = new ArrayList<>();
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

    private InstanceIdentity ec2Identity(Environment environment) throws IOException {
        String endpoint = environment.getProperty("kiln.imds.endpoint", String.class)
                .orElse(env.getOrDefault("KILN_IMDS_ENDPOINT", null));
        Duration timeout = SettingsCatalog.parseDuration(environment.getProperty("kiln.imds.timeout", String.class)
                .orElse(env.getOrDefault("KILN_IMDS_TIMEOUT", "30s")));
        return ImdsIdentity.read(endpoint, timeout);
    }

    private static String describeSource(PropertySource source) {
        String name = source.getName();
        return name.contains("/") || name.endsWith(".yml") || name.endsWith(".yaml") ? name : "settings source '" + name + "'";
    }

    private static <T extends Throwable> Optional<T> cause(Throwable e, Class<T> type) {
        for (Throwable t = e; t != null; t = t.getCause() == t ? null : t.getCause()) {
            if (type.isInstance(t)) {
                return Optional.of(type.cast(t));
            }
        }
        return Optional.empty();
    }

    private static void closeQuietly(ApplicationContext context) {
        try {
            context.close();
        } catch (RuntimeException e) {
            // it failed to start; what stopped it is reported
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
