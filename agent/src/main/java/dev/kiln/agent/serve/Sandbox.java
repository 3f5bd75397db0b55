package dev.kiln.agent.serve;

import dev.kiln.agent.fs.FsAccess;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;

/**
 * Runs a program (the real {@code rsync --server}) confined to a user's tree: it sees only the
 * given directories (and the system's programs), nothing of the agent's state or the host's
 * files, and cannot write where a mount is read-only. {@link BwrapSandbox} is the real one.
 */
public interface Sandbox {

    /**
     * A directory the program sees.
     *
     * @param real     the real directory
     * @param at       where the program sees it, e.g. {@code /outputs}
     * @param writable whether it is mounted read-write
     */
    record Mount(Path real, String at, boolean writable) {
    }

    /** Whether this sandbox can run here; otherwise {@link #why()} says what is missing. */
    boolean available();

    /** What is missing, when not {@link #available()}. */
    String why();

    /**
     * Starts {@code argv} inside the sandbox, with {@code /} as its working directory, as the
     * account of {@code runAs} (unchanged when that is the agent's own access).
     */
    Process start(List<String> argv, List<Mount> mounts, FsAccess runAs) throws IOException;
}
