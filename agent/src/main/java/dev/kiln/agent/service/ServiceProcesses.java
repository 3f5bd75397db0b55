package dev.kiln.agent.service;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Finds a service's processes in /proc by the {@code KILN_SERVICE_ID} variable each of them
 * inherits, owned by the build user: what is left of a service's process group after its leader
 * exited, and what a stopped agent left running. Only such processes are ever signalled, so a
 * process group id the kernel has handed to someone else is never hit.
 */
final class ServiceProcesses {

    /** The variable that marks a service's processes. */
    static final String MARKER = "KILN_SERVICE_ID";

    private final Path proc;

    ServiceProcesses(Path proc) {
        this.proc = proc;
    }

    /**
     * Pids of the processes marked {@code id} and owned by {@code uid}.
     *
     * @param pgid only those in this process group; 0 for any group
     */
    List<Long> find(String id, int uid, long pgid) {
        byte[] entry = (MARKER + "=" + id).getBytes(StandardCharsets.UTF_8);
        List<Long> found = new ArrayList<>();
        try (DirectoryStream<Path> dirs = Files.newDirectoryStream(proc, "[0-9]*")) {
            for (Path d : dirs) {
                try {
                    if (((Number) Files.getAttribute(d, "unix:uid", LinkOption.NOFOLLOW_LINKS)).intValue() != uid) {
                        continue;
                    }
                    if (pgid > 0 && processGroup(d) != pgid) {
                        continue;
                    }
                    if (containsEntry(Files.readAllBytes(d.resolve("environ")), entry)) {
                        found.add(Long.parseLong(d.getFileName().toString()));
                    }
                } catch (IOException | RuntimeException ignored) {
                    // gone, or a zombie with nothing to read
                }
            }
        } catch (IOException ignored) {
            // no /proc: nothing to find
        }
        return found;
    }

    /**
     * Sends TERM (or KILL when {@code force}) to {@code pid} if it is still marked {@code id} and
     * owned by {@code uid}: the handle taken first carries the process's start time, which the
     * signal is checked against, so a pid the kernel reused meanwhile is not hit.
     */
    void signal(long pid, String id, int uid, boolean force) {
        ProcessHandle.of(pid).ifPresent(h -> {
            if (marked(proc.resolve(Long.toString(pid)), id, uid)) {
                if (force) {
                    h.destroyForcibly();
                } else {
                    h.destroy();
                }
            }
        });
    }

    private static boolean marked(Path d, String id, int uid) {
        try {
            return ((Number) Files.getAttribute(d, "unix:uid", LinkOption.NOFOLLOW_LINKS)).intValue() == uid
                    && containsEntry(Files.readAllBytes(d.resolve("environ")),
                    (MARKER + "=" + id).getBytes(StandardCharsets.UTF_8));
        } catch (IOException | RuntimeException e) {
            return false; // gone
        }
    }

    /** The process group of a /proc/PID entry (the field after state and ppid in its stat). */
    private static long processGroup(Path d) throws IOException {
        String stat = Files.readString(d.resolve("stat"), StandardCharsets.UTF_8);
        String[] rest = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
        return Long.parseLong(rest[2]);
    }

    /** True when the NUL-separated environment holds exactly this NAME=value entry. */
    private static boolean containsEntry(byte[] env, byte[] entry) {
        int start = 0;
        for (int i = 0; i <= env.length; i++) {
            if (i == env.length || env[i] == 0) {
                if (i - start == entry.length && Arrays.equals(env, start, i, entry, 0, entry.length)) {
                    return true;
                }
                start = i + 1;
            }
        }
        return false;
    }
}
