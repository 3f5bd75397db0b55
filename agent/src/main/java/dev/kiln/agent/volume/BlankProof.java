package dev.kiln.agent.volume;

/**
 * Why a device that looks blank may be formatted: what proves that nothing on it is lost.
 * {@link BlankProver} finds one, or nothing is formatted.
 *
 * @param kind   which proof
 * @param reason in words, for the agent's log, e.g. "its image file /var/kiln/a.img is all holes"
 */
public record BlankProof(Kind kind, String reason) {

    /** The proofs there are. */
    public enum Kind {
        /** The controller created the EBS volume empty for this launch, and the device is that volume. */
        CREATED_EMPTY,
        /** A loop device whose backing file has no data, only holes, where the device reads it. */
        HOLES,
        /** The whole device was read and is all zeros. */
        ZEROS
    }
}
