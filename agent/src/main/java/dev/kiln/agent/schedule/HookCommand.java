package dev.kiln.agent.schedule;

import dev.kiln.agent.build.BuildUser;
import dev.kiln.agent.build.ProcessLauncher;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;

/**
 * Runs a schedule's pre or post command ({@code /bin/sh -c CMD}) as the build user, in its own
 * process group, with a clean environment, for at most a timeout (then the whole group is
 * killed). Its output is kept (the last few KiB) for the run's result and the agent's log.
 */
final class HookCommand {

    private static final String PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
    private static final int KEEP_OUTPUT = 4096;

    private final ProcessLauncher launcher;
    private final Supplier<BuildUser> user;
    private final Duration timeout;

    /** What a command did. */
    record Outcome(boolean ok, String describe, String output) {
    }

    HookCommand(ProcessLauncher launcher, Supplier<BuildUser> user, Duration timeout) {
        this.launcher = launcher;
        this.user = user;
        this.timeout = timeout;
    }

    /**
     * Runs {@code command} in {@code dir} (the volume's mount point).
     *
     * @param which "pre" or "post", for messages
     */
    Outcome run(String which, String command, ScheduleSpec spec, Path dir) {
        BuildUser u;
        try {
            u = user.get();
        } catch (RuntimeException e) {
            return new Outcome(false, "the " + which + " command did not run: " + e.getMessage(), "");
        }
        Map<String, String> env = new LinkedHashMap<>();
        env.put("PATH", PATH);
        env.put("HOME", u.home().toString());
        env.put("USER", u.name());
        env.put("LOGNAME", u.name());
        env.put("LANG", "C.UTF-8");
        env.put("KILN_SCHEDULE_ROLE", spec.role());
        env.put("KILN_MOUNT_POINT", dir.toString());
        Process p;
        try {
            p = launcher.start(List.of("/bin/sh", "-c", command), dir, u, env);
        } catch (IOException e) {
            return new Outcome(false, "the " + which + " command could not start: " + e.getMessage(), "");
        }
        Tail out = new Tail(p.getInputStream());
        Tail err = new Tail(p.getErrorStream());
        try {
            p.getOutputStream().close();
        } catch (IOException ignored) {
            // stdin is /dev/null anyway
        }
        boolean ended;
        try {
            ended = p.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            ended = false;
        }
        if (!ended) {
            launcher.signalGroup(p.pid(), "KILL");
            try {
                p.waitFor(10, TimeUnit.SECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        String output = (out.text() + err.text()).strip();
        if (!ended) {
            return new Outcome(false, "the " + which + " command ran longer than " + dev.kiln.time.Durations.format(timeout)
                    + " (kiln.snapshots.command-timeout) and was killed", output);
        }
        int exit = p.exitValue();
        return exit == 0 ? new Outcome(true, "the " + which + " command succeeded", output)
                : new Outcome(false, "the " + which + " command exited with status " + exit
                + (output.isEmpty() ? "" : ": " + lastLine(output)), output);
    }

    private static String lastLine(String output) {
        List<String> lines = output.lines().toList();
        String last = lines.get(lines.size() - 1);
        return last.length() > 200 ? last.substring(0, 200) + "..." : last;
    }

    /** Reads a stream to its end on a daemon thread, keeping only its last bytes. */
    private static final class Tail {
        private final byte[] buf = new byte[KEEP_OUTPUT];
        private int len;
        private final Thread thread;

        Tail(InputStream in) {
            thread = new Thread(() -> {
                byte[] chunk = new byte[8192];
                try (in) {
                    int n;
                    while ((n = in.read(chunk)) > 0) {
                        append(chunk, n);
                    }
                } catch (IOException ignored) {
                    // the process ended or was killed
                }
            }, "kiln-schedule-hook-output");
            thread.setDaemon(true);
            thread.start();
        }

        private synchronized void append(byte[] chunk, int n) {
            if (n >= buf.length) {
                System.arraycopy(chunk, n - buf.length, buf, 0, buf.length);
                len = buf.length;
                return;
            }
            int keep = Math.min(len, buf.length - n);
            System.arraycopy(buf, len - keep, buf, 0, keep);
            System.arraycopy(chunk, 0, buf, keep, n);
            len = keep + n;
        }

        String text() {
            try {
                thread.join(2000);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            synchronized (this) {
                return new String(buf, 0, len, StandardCharsets.UTF_8);
            }
        }
    }
}
