package dev.kiln.agent.build;

import java.util.Optional;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Reads tup's progress from its output. While executing commands, tup prints one line per
 * finished command with a countdown of those left, e.g. {@code " ~40% 3) [0.212s] build-x: cmd"}
 * after {@code "[ tup ] [0.014s] Executing Commands..."}. The first such line fixes the total
 * (remaining + 1); each line gives done = total - remaining.
 */
public final class TupProgress {

    private static final Pattern PHASE = Pattern.compile("^\\[ tup \\] \\[[0-9.]+s\\] (.*)$");
    private static final Pattern LINE = Pattern.compile("^\\s*\\*?\\s*~?\\s*(\\d+)%\\s+(\\d+)\\)");

    /** Commands done of total. */
    public record Count(long done, long total) {
    }

    private boolean executing;
    private long total;

    /** Feeds one line of tup's output; returns the new count when the line changes it. */
    public Optional<Count> line(String line) {
        Matcher phase = PHASE.matcher(line);
        if (phase.find()) {
            String what = phase.group(1);
            if (what.startsWith("Executing Commands")) {
                executing = true;
                total = 0;
            } else if (what.startsWith("No commands to execute")) {
                return Optional.of(new Count(0, 0));
            } else {
                executing = false;
            }
            return Optional.empty();
        }
        if (!executing) {
            return Optional.empty();
        }
        Matcher m = LINE.matcher(line);
        if (!m.find()) {
            return Optional.empty();
        }
        long remaining = Long.parseLong(m.group(2));
        if (total == 0) {
            total = remaining + 1;
        }
        return Optional.of(new Count(Math.max(0, total - remaining), total));
    }
}
