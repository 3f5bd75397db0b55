package dev.kiln.agent.status;

import dev.kiln.agent.instance.InstanceIdentity;
import jakarta.inject.Singleton;

import java.io.IOException;
import java.io.InputStream;
import java.net.InetAddress;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.Properties;

/**
 * What the agent reports about itself: version, identity, when it started, how long it has run.
 * A plain domain class; the gRPC service only translates it.
 */
@Singleton
public final class AgentInfo {

    private final InstanceIdentity identity;
    private final Clock clock;
    private final Instant startedAt;
    private final String version;
    private final String hostname;

    public AgentInfo(InstanceIdentity identity, Clock clock) {
        this.identity = identity;
        this.clock = clock;
        this.startedAt = clock.instant();
        this.version = version();
        this.hostname = localHostname();
    }

    public InstanceIdentity identity() {
        return identity;
    }

    public Instant startedAt() {
        return startedAt;
    }

    public Duration uptime() {
        return Duration.between(startedAt, clock.instant());
    }

    public String agentVersion() {
        return version;
    }

    public String hostname() {
        return hostname;
    }

    /** The agent's version from its build, or "unknown" when run from unpackaged classes. */
    public static String version() {
        try (InputStream in = AgentInfo.class.getResourceAsStream("/kiln-agent-version.properties")) {
            if (in == null) {
                return "unknown";
            }
            Properties p = new Properties();
            p.load(in);
            return p.getProperty("version", "unknown");
        } catch (IOException e) {
            return "unknown";
        }
    }

    /** This machine's host name, or "localhost" when it cannot be resolved. */
    public static String localHostname() {
        try {
            return InetAddress.getLocalHost().getHostName();
        } catch (IOException e) {
            return "localhost";
        }
    }
}
