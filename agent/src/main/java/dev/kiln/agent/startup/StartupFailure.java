package dev.kiln.agent.startup;

/**
 * A start-up step that stops the agent: its message (printed after "kiln-agent: ") and the
 * process exit code.
 */
public final class StartupFailure extends RuntimeException {

    /** sysexits' EX_CONFIG: the configuration is wrong; restarting will not help. */
    public static final int EXIT_CONFIG = 78;
    /** sysexits' EX_UNAVAILABLE: a service the agent needs (IMDS, the port) is not available. */
    public static final int EXIT_UNAVAILABLE = 69;

    private final int exitCode;

    public StartupFailure(int exitCode, String message) {
        super(message, null, false, false);
        this.exitCode = exitCode;
    }

    public int exitCode() {
        return exitCode;
    }
}
