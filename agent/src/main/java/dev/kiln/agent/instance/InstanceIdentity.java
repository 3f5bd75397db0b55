package dev.kiln.agent.instance;

import dev.kiln.agent.config.AgentMode;

import java.util.Optional;

/**
 * Who this agent is: its mode, instance id and region, and the user data it was launched with.
 *
 * @param mode       ec2 or local
 * @param instanceId the EC2 instance id, or {@code local-<hostname>} in local mode
 * @param region     the EC2 region; empty in local mode
 * @param userData   the instance's user data, if any (ec2 mode)
 */
public record InstanceIdentity(AgentMode mode, String instanceId, String region, Optional<String> userData) {

    /** The identity of an agent running with no EC2 at all. */
    public static InstanceIdentity local(String hostname) {
        return new InstanceIdentity(AgentMode.LOCAL, "local-" + hostname, "", Optional.empty());
    }
}
