package dev.kiln.agent.lease;

import java.time.Instant;

/**
 * An interruption notice from IMDS.
 *
 * @param reason what kind
 * @param detail the notice as EC2 gave it, for the log
 * @param by     when EC2 will act (a spot notice's time, a scheduled event's NotBefore); null if unknown
 */
public record Notice(EndReason reason, String detail, Instant by) {
}
