package dev.kiln.agent.build;

/** A build is already running in the work tree (and the request did not ask to queue). */
public class BuildConflictException extends RuntimeException {

    private final String runningId;

    public BuildConflictException(String runningId, String workTree) {
        super("build " + runningId + " is already running in " + workTree
                + "; wait for it (kiln logs -f " + runningId + "), cancel it (kiln cancel " + runningId
                + "), or queue behind it (--queue)");
        this.runningId = runningId;
    }

    public String runningId() {
        return runningId;
    }
}
