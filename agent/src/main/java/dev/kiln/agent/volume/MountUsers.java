package dev.kiln.agent.volume;

import java.nio.file.Path;
import java.time.Duration;
import java.util.List;

/**
 * An extension hook for the parts of the agent that use mounts on purpose (builds, SSH sessions).
 * Before an unmount signals anything, every {@code MountUsers} bean is asked to stop its own use
 * of the mount in its own way (cancel a build, close a session), so that what is left for TERM
 * and KILL is only what nobody owns.
 */
public interface MountUsers {

    /**
     * Stops everything this component runs that uses a path at or under {@code mountPoint}, and
     * returns once it has stopped (or the grace period is over).
     *
     * @param mountPoint the mount about to be unmounted
     * @param grace      how long a graceful stop may take before it is forced
     * @return what was stopped, one short description each (e.g. "build b-... (cancelled)")
     */
    default List<String> release(Path mountPoint, Duration grace) {
        return List.of();
    }
}
