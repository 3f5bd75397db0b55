package dev.kiln.agent.lease;

import java.util.List;

/** Something that keeps the agent from being idle: running builds, SSH sessions, log streams. */
public interface BusySource {

    /** Why the agent is busy now, e.g. "build b-... running"; empty when idle. */
    List<String> busyReasons();
}
