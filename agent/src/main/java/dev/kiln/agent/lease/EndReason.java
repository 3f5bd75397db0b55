package dev.kiln.agent.lease;

/** Why the agent ends (or will end) its instance. */
public enum EndReason {
    DEADLINE, SHUTDOWN_REQUESTED, SPOT_INTERRUPTION, REBALANCE_RECOMMENDATION, SCHEDULED_EVENT, IDLE
}
