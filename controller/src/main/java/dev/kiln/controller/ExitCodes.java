package dev.kiln.controller;

/**
 * Every exit code the kiln CLI uses, in one place (documented in docs/cli.md). Scripts can rely
 * on them: they do not change meaning between versions.
 */
public final class ExitCodes {
    /** Success. */
    public static final int OK = 0;
    /** An unexpected failure; the message says what happened. */
    public static final int FAILURE = 1;
    /** Bad command line: unknown option, missing argument. */
    public static final int USAGE = 2;
    /** Configuration missing or invalid: not initialised (run `kiln init`), bad config file. */
    public static final int CONFIG = 3;
    /** The agent could not be reached, or the TLS handshake with it failed. */
    public static final int UNREACHABLE = 4;
    /** The agent refused the request (invalid argument, failed precondition, permission). */
    public static final int REFUSED = 5;
    /** The thing named does not exist (build, volume, instance). */
    public static final int NOT_FOUND = 6;
    /** Something already exists and was not overwritten (e.g. the fleet CA without --force). */
    public static final int EXISTS = 7;
    /** The agent does not implement this yet (older agent version). */
    public static final int UNSUPPORTED = 8;
    /** A wait ran out of time. */
    public static final int TIMEOUT = 9;

    private ExitCodes() {
    }
}
