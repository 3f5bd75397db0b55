package dev.kiln.agent.lease;

/** A lease change that cannot be made; the message says why and what the limit is. */
public class LeaseException extends RuntimeException {
    public LeaseException(String message) {
        super(message);
    }
}
