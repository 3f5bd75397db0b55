package dev.kiln.agent.lease;

import dev.kiln.os.OsCommand;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.io.InterruptedIOException;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.List;

/**
 * A transient systemd timer ({@code kiln-backstop.timer}) that runs {@code systemctl poweroff}
 * at the backstop time. Re-arming stops the old timer first. The timer lives in PID 1, so it fires
 * whatever happens to the agent's process.
 */
public final class SystemdBackstop implements Backstop {

    private static final Logger LOG = LoggerFactory.getLogger(SystemdBackstop.class);
    static final String UNIT = "kiln-backstop";
    private static final Duration LIMIT = Duration.ofSeconds(30);
    private static final DateTimeFormatter CALENDAR =
            DateTimeFormatter.ofPattern("yyyy-MM-dd HH:mm:ss").withZone(ZoneOffset.UTC);

    /** The systemd calendar expression for an instant (seconds precision, UTC). */
    public static String calendar(Instant at) {
        return CALENDAR.format(at) + " UTC";
    }

    /** The commands that (re-)arm the timer for {@code at}, in order. */
    public static List<List<String>> commands(Instant at) {
        return List.of(
                List.of("systemctl", "stop", UNIT + ".timer"),
                List.of("systemctl", "reset-failed", UNIT + ".timer", UNIT + ".service"),
                List.of("systemd-run", "--unit=" + UNIT, "--description=kiln lease backstop",
                        "--on-calendar=" + calendar(at), "--timer-property=AccuracySec=1s",
                        "/usr/bin/systemctl", "poweroff"));
    }

    @Override
    public void arm(Instant at) {
        List<List<String>> commands = commands(at);
        for (int i = 0; i < commands.size(); i++) {
            int code = run(commands.get(i));
            // Stopping or resetting a timer that does not exist yet fails harmlessly; arming must not.
            if (i == commands.size() - 1 && code != 0) {
                LOG.error("could not arm the backstop timer for {} (systemd-run exit {})", at, code);
                return;
            }
        }
        LOG.info("backstop armed: systemd timer {}.timer powers off at {}", UNIT, calendar(at));
    }

    private static int run(List<String> command) {
        try {
            OsCommand.Result r = OsCommand.run(LIMIT, command);
            if (!r.ok() && !r.said().isEmpty()) {
                LOG.debug("{}: {}", String.join(" ", command), r.said());
            }
            return r.exitCode();
        } catch (InterruptedIOException e) {
            return -1;
        } catch (IOException e) {
            LOG.warn("cannot run {}: {}", command.get(0), e.toString());
            return -1;
        }
    }

    @Override
    public String describe() {
        return "systemd timer " + UNIT + ".timer";
    }
}
