package dev.kiln.agent.status;

import java.util.List;

/**
 * Configuration problems the agent started with and could not stop for: in ec2 mode, a user data
 * document that cannot be used. The agent then runs degraded (see {@code DegradedMode}) and
 * Status reports these, with state DEGRADED, so {@code kiln status} shows what to fix.
 *
 * @param configuration one message per problem, each naming the setting; empty when all is well
 */
public record Problems(List<String> configuration) {

    public Problems {
        configuration = List.copyOf(configuration);
    }

    /** No problems. */
    public static Problems none() {
        return new Problems(List.of());
    }

    /** Whether the agent runs on fallback settings. */
    public boolean degraded() {
        return !configuration.isEmpty();
    }
}
