package dev.kiln.agent.lease;

import java.time.Instant;

/**
 * A timer outside the JVM that ends the instance at a time even if the agent hangs or is killed.
 * Armed (again) whenever the lease is set or extended.
 */
public interface Backstop {

    /** (Re-)arms the timer for {@code at}, replacing any earlier one. */
    void arm(Instant at);

    /** A name for the log. */
    String describe();

    /** No backstop (local mode, or by choice). */
    Backstop NONE = new Backstop() {
        @Override
        public void arm(Instant at) {
        }

        @Override
        public String describe() {
            return "none";
        }
    };
}
