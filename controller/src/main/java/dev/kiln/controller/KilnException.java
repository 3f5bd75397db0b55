package dev.kiln.controller;

/** A failure with a message for the user and the exit code it maps to. */
public class KilnException extends RuntimeException {

    private final int exitCode;

    public KilnException(int exitCode, String message) {
        super(message);
        this.exitCode = exitCode;
    }

    public KilnException(int exitCode, String message, Throwable cause) {
        super(message, cause);
        this.exitCode = exitCode;
    }

    /** One of {@link ExitCodes}. */
    public int exitCode() {
        return exitCode;
    }
}
