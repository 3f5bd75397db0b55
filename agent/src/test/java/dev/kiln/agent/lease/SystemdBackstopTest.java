package dev.kiln.agent.lease;

import dev.kiln.testkit.Prerequisites;
import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Instant;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The systemd backstop's commands. systemd is not PID 1 on this machine, so the timer cannot be
 * started here; the commands are checked for content, and the calendar expression by systemd's
 * own parser.
 */
class SystemdBackstopTest {

    static final Instant AT = Instant.parse("2026-11-22T12:10:07.456Z");

    @Test
    void armsATransientTimerThatPowersOffAtTheBackstopTime() {
        List<List<String>> commands = SystemdBackstop.commands(AT);
        assertEquals(List.of("systemctl", "stop", "kiln-backstop.timer"), commands.get(0));
        assertEquals(List.of("systemctl", "reset-failed", "kiln-backstop.timer", "kiln-backstop.service"), commands.get(1));
        assertEquals(List.of("systemd-run", "--unit=kiln-backstop", "--description=kiln lease backstop",
                "--on-calendar=2026-11-22 12:10:07 UTC", "--timer-property=AccuracySec=1s",
                "/usr/bin/systemctl", "poweroff"), commands.get(2));
        assertEquals(List.of("systemctl", "poweroff"), SystemdPowerControl.COMMAND, "poweroff, never halt");
    }

    @Test
    void systemdParsesTheCalendarExpressionAsTheSameInstant() throws Exception {
        Path analyze = Prerequisites.requireCommand("systemd-analyze", "apt-get install systemd");
        Process p = new ProcessBuilder(analyze.toString(), "calendar", SystemdBackstop.calendar(AT))
                .redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(30, TimeUnit.SECONDS));
        assertEquals(0, p.exitValue(), out);
        assertTrue(out.contains("Normalized form: 2026-11-22 12:10:07 UTC"), out);
    }
}
