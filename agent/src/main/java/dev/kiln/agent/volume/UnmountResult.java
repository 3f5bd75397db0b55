package dev.kiln.agent.volume;

import java.util.List;

/**
 * What an unmount did.
 *
 * @param wasMounted false when there was nothing to unmount (a repeat)
 * @param stopped    what was stopped to release the mount: builds ("build ID (cancelled)") and
 *                   processes ("PID COMMAND (TERM)" or "(KILL)")
 */
public record UnmountResult(boolean wasMounted, List<String> stopped) {
}
