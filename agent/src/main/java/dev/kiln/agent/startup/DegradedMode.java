package dev.kiln.agent.startup;

import dev.kiln.agent.config.AgentMode;
import dev.kiln.agent.config.SettingsCatalog;

import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.function.Consumer;

/**
 * What a start-up problem does to the agent. In local mode every problem stops it with an exit
 * code. In ec2 mode nothing may stop it, because only its lease ends the instance: unusable user
 * data makes it start again degraded ({@link #fallback}), and a later step that fails (boot
 * mounts, SSH, the gRPC server) is reported and the agent runs on.
 */
public final class DegradedMode {

    /** How settings from user data are named in messages. */
    public static final String USER_DATA = "EC2 user data";
    /** kiln.lease.fallback-ttl's default. */
    public static final String DEFAULT_FALLBACK_TTL = "30m";
    /** User data settings a degraded agent keeps (each only if valid): what it needs to be reached. */
    static final Set<String> KEPT_WHEN_DEGRADED = Set.of(
            "kiln.tls.cert", "kiln.tls.key", "kiln.tls.ca", "kiln.grpc.host", "kiln.grpc.port", "kiln.name");

    private final boolean ec2;
    private final boolean degraded;
    private final boolean userDataPresent;

    /**
     * @param mode            the agent's mode
     * @param degraded        whether it already runs on {@link #fallback} settings
     * @param userDataPresent whether the user data had kiln settings
     */
    public DegradedMode(AgentMode mode, boolean degraded, boolean userDataPresent) {
        this.ec2 = mode == AgentMode.EC2;
        this.degraded = degraded;
        this.userDataPresent = userDataPresent;
    }

    /** Whether the agent runs on fallback settings: no boot mounts, no boot build, no SSH. */
    public boolean degraded() {
        return degraded;
    }

    /**
     * The settings cannot be used together (the context's binding, the TLS material, the lease).
     * In ec2 mode, unless already degraded, that is the user data's fault, as a typo is.
     *
     * @param label   what the problem is called when it stops the agent, e.g. "configuration error"
     * @param problem the problem, naming the setting
     * @return the exception to throw: {@link UserDataUnusable} or a {@link StartupFailure}
     */
    public RuntimeException unusable(String label, String problem) {
        if (ec2 && !degraded) {
            return new UserDataUnusable((userDataPresent ? USER_DATA + ": "
                    : "the EC2 user data has no kiln settings (kiln launch writes them): ") + problem);
        }
        return new StartupFailure(StartupFailure.EXIT_CONFIG, label + ": " + problem);
    }

    /**
     * The TLS material cannot be used. A degraded agent carries on without its gRPC server, on its
     * lease; otherwise as {@link #unusable}.
     *
     * @return the problem, when the agent carries on without gRPC
     */
    public String tlsUnusable(String problem) {
        if (degraded) {
            return problem;
        }
        throw unusable("configuration error", problem);
    }

    /**
     * A step after the lease is settled failed. In ec2 mode it is reported and start-up goes on;
     * in local mode the agent stops.
     *
     * @param problem  the message when the agent stops
     * @param exitCode the exit code then
     * @param reported the message reported in ec2 mode (it says what does not run)
     * @param report   where ec2 mode reports it
     * @throws StartupFailure in local mode
     */
    public void lateFailure(String problem, int exitCode, String reported, Consumer<String> report) {
        if (!ec2) {
            throw new StartupFailure(exitCode, problem);
        }
        report.accept(reported);
    }

    /**
     * The settings a degraded agent runs on, and what it says about them. It keeps only what it
     * needs to be reachable (the user data's TLS and gRPC settings, where each is valid on its own)
     * and to end on time: the lease is the user data's kiln.lease.ttl if that is valid, else
     * agent.yml's (or the environment's), else kiln.lease.fallback-ttl; it cannot be extended.
     *
     * @param userData      the user data's settings, flattened
     * @param configuredTtl kiln.lease.ttl from agent.yml or the environment, if set
     * @param fallbackTtl   kiln.lease.fallback-ttl from agent.yml or the environment, if set
     */
    public static Fallback fallback(Map<String, Object> userData, Optional<String> configuredTtl,
                                    Optional<String> fallbackTtl) {
        Map<String, Object> settings = new LinkedHashMap<>();
        userData.forEach((key, value) -> {
            if (KEPT_WHEN_DEGRADED.contains(key) && SettingsCatalog.problems(USER_DATA, Map.of(key, value)).isEmpty()) {
                settings.put(key, value);
            }
        });
        Duration ttl;
        String from;
        Object userTtl = userData.get("kiln.lease.ttl");
        Optional<String> configured = configuredTtl.filter(SettingsCatalog::isPositiveDuration);
        if (userTtl != null && SettingsCatalog.isPositiveDuration(String.valueOf(userTtl))) {
            ttl = SettingsCatalog.parseDuration(String.valueOf(userTtl));
            from = "kiln.lease.ttl in the user data";
        } else if (configured.isPresent()) {
            ttl = SettingsCatalog.parseDuration(configured.get());
            from = "kiln.lease.ttl in agent.yml or the environment";
        } else {
            ttl = SettingsCatalog.parseDuration(fallbackTtl.orElse(DEFAULT_FALLBACK_TTL));
            from = "kiln.lease.fallback-ttl: no usable kiln.lease.ttl";
        }
        settings.put("kiln.lease.ttl", ttl.toString());
        settings.put("kiln.lease.max-lifetime", ttl.toString());
        settings.put("kiln.lease.forever", "false");
        settings.put("kiln.ssh.enabled", "false");
        return new Fallback(settings, "the EC2 user data cannot be used, so the agent runs degraded: no boot mounts,"
                + " no boot build, no SSH; it ends the instance " + ttl + " after its first start (" + from + ")."
                + " Fix the user data (kiln launch writes it; see docs/agent.md, \"User data and degraded mode\") and launch a new instance.");
    }

    /**
     * A degraded agent's settings.
     *
     * @param settings flattened settings, to be given the user data's precedence (a KILN_*
     *                 environment variable still wins)
     * @param message  what the agent says about them
     */
    public record Fallback(Map<String, Object> settings, String message) {
        public Fallback {
            settings = Map.copyOf(settings);
        }
    }
}
