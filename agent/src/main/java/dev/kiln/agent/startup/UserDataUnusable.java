package dev.kiln.agent.startup;

/**
 * In ec2 mode, the user data's settings passed each check but cannot be used together (the lease,
 * the TLS material, a type the binding refused), or there are none: the agent starts again
 * degraded ({@link DegradedMode#fallback}).
 */
public final class UserDataUnusable extends RuntimeException {

    public UserDataUnusable(String message) {
        super(message, null, false, false);
    }
}
