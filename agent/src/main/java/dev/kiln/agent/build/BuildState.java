package dev.kiln.agent.build;

/** Where a build is in its life. */
public enum BuildState {
    QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED,
    /** The agent stopped while the build ran; running it again continues (tup is incremental). */
    INTERRUPTED;

    public boolean ended() {
        return this != QUEUED && this != RUNNING;
    }
}
