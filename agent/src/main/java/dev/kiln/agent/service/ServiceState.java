package dev.kiln.agent.service;

/** Where a service is (the contract's ServiceState). */
public enum ServiceState {
    /** Waiting for the boot script to succeed. */
    WAITING,
    /** Started; its port does not accept connections yet. */
    STARTING,
    RUNNING,
    /** Exited; it starts again after a backoff. */
    RESTARTING,
    /** Given up (repeated fast failures, or the boot script failed). */
    FAILED,
    /** Stopped by the drain (or the agent's stop). */
    STOPPED,
    /** Declared only: something else serves its port. */
    EXTERNAL;

    /** Whether the service will not run again. */
    public boolean finished() {
        return this == FAILED || this == STOPPED;
    }
}
