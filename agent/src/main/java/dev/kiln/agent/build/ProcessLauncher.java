package dev.kiln.agent.build;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

/**
 * Starts build processes and signals their process groups: the agent's one boundary with the OS
 * for builds. {@link OsProcessLauncher} is the real implementation.
 */
public interface ProcessLauncher {

    /**
     * Starts {@code argv} in {@code dir} as {@code user}, in a new session and process group
     * (its pid is the group id), with exactly {@code env} as its environment.
     */
    Process start(List<String> argv, Path dir, BuildUser user, Map<String, String> env) throws IOException;

    /** Sends a signal ("TERM", "KILL") to every process in the group. */
    void signalGroup(long pgid, String signal);

    /**
     * Processes still running for a build (found by the KILN_BUILD_ID variable every build
     * process inherits): after an agent crash they are orphans that must not keep writing into
     * a work tree a new build may use.
     */
    java.util.List<Long> processesOf(String buildId);
}
