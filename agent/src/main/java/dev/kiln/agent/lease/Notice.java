package dev.kiln.agent.lease;

import java.time.Instant;

/**
 * An interruption notice from IMDS.
 *
 * @param reason what kind
 * @param detail the notice as EC2 gave it, for the log
 * @param by     when EC2 will act (a spot notice's time, a scheduled event's NotBefore); null if unknown
 * @param event  a scheduled event's Code (e.g. instance-stop, system-reboot); null for other notices
 */
public record Notice(EndReason reason, String detail, Instant by, String event) {

    /** A notice that is not a scheduled event. */
    public Notice(EndReason reason, String detail, Instant by) {
        this(reason, detail, by, null);
    }

    /**
     * Whether the instance survives what EC2 announces: a reboot (instance-reboot, system-reboot)
     * or system-maintenance keeps the instance, its volumes and its lease, so the agent reports it
     * and does not end the instance. A stop or a retirement ends the instance as Kiln runs it.
     */
    public boolean keepsInstance() {
        return event != null && (event.endsWith("-reboot") || event.equals("system-maintenance"));
    }
}
