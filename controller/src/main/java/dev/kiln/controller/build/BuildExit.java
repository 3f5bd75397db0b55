package dev.kiln.controller.build;

import dev.kiln.proto.agent.v1.Build;

/** The exit status of `kiln build` and `kiln logs -f`: the build's own, or a fixed one when it has none. */
public final class BuildExit {

    /** A build cancelled before it could exit by itself (as a shell reports SIGINT). */
    public static final int CANCELLED = 130;
    /** A build the agent's restart interrupted (sysexits EX_TEMPFAIL: run it again to continue). */
    public static final int INTERRUPTED = 75;

    private BuildExit() {
    }

    public static int of(Build b) {
        return switch (b.getState()) {
            case BUILD_STATE_SUCCEEDED -> 0;
            case BUILD_STATE_FAILED -> b.getHasExitCode() && b.getExitCode() != 0 ? b.getExitCode() : 1;
            case BUILD_STATE_CANCELLED -> CANCELLED;
            case BUILD_STATE_INTERRUPTED -> INTERRUPTED;
            default -> 1;
        };
    }
}
