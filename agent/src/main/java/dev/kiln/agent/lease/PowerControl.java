package dev.kiln.agent.lease;

/** How the agent ends its instance: the last step of a drain. */
public interface PowerControl {

    /** Ends the instance (or, in local mode, the agent process). */
    void powerOff();

    /** A name for the log. */
    String describe();
}
