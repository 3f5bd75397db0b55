package dev.kiln.agent.volume;

import java.nio.file.Path;
import java.util.List;

/**
 * Finds the processes that hold a mount and signals them: the agent's boundary with
 * {@code /proc} for unmounting. {@link ProcProcessTable} is the real implementation.
 */
public interface ProcessTable {

    /**
     * Every process with an open file, working directory, root, executable or memory mapping on
     * the filesystem with this device number or under this path.
     *
     * @param device     the mount's device number, "major:minor" as mountinfo prints it
     * @param mountPoint the mount point
     */
    List<Holder> holders(String device, Path mountPoint);

    /**
     * Sends TERM ({@code kill == false}) or KILL to the process, if it is still the same process
     * (same start time).
     *
     * @return true if the signal was sent
     */
    boolean signal(Holder holder, boolean kill);

    /** Whether the process still exists (and is the same process). */
    boolean alive(Holder holder);
}
