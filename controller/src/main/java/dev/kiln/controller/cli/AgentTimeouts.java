package dev.kiln.controller.cli;

/** How long the CLI waits for agents, where a command's flag does not say. */
final class AgentTimeouts {

    private AgentTimeouts() {
    }

    /** A request's timeout without --timeout, KILN_TIMEOUT or config.yml's timeout. */
    static final String REQUEST = "10s";

    /** A request made while the shell completes a word: short, as someone is waiting at the prompt. */
    static final java.time.Duration COMPLETION = java.time.Duration.ofSeconds(3);
}
