package dev.kiln.agent.volume;

/**
 * The three answers to "may this device be formatted?". Only {@link #BLANK} ever is, and only with
 * a proof from {@link BlankProver}: BLANK is evidence, not proof.
 */
public enum FormatDecision {
    /** No filesystem or partition-table signature (blkid and wipefs agree), readable, first and last MiB all zero. */
    BLANK,
    /** A recognised filesystem and nothing else. */
    HAS_DATA,
    /** Anything else: a partition table, an encrypted volume, unrecognised data, a read error, a disagreement. */
    UNKNOWN
}
