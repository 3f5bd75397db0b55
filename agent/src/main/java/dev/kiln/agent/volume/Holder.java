package dev.kiln.agent.volume;

import java.time.Instant;

/**
 * A process that holds something on a mount: an open file, its working or root directory, its
 * executable or a memory mapping.
 *
 * @param pid     the process id
 * @param command its command line (shortened), or [comm] for a kernel thread
 * @param how     what it holds, e.g. "open file /mnt/builds/x" or "working directory"
 * @param started when it started (guards against a reused pid when signalling); null if unknown
 */
public record Holder(long pid, String command, String how, Instant started) {

    /** "pid 4242 (sleep 600)". */
    public String describe() {
        return "pid " + pid + " (" + command + ")";
    }
}
