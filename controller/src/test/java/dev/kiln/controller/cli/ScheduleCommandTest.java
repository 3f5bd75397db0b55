package dev.kiln.controller.cli;

import dev.kiln.controller.ExitCodes;
import dev.kiln.controller.KilnCli;
import dev.kiln.controller.config.CliEnvironment;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** kiln schedule's usage errors: refused with what to write instead, before any instance is looked up. */
class ScheduleCommandTest {

    @TempDir
    Path home;

    record Run(int code, String out, String err) {
    }

    Run kiln(String... args) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        int code = KilnCli.run(new CliEnvironment(Map.of("XDG_CONFIG_HOME", home.resolve("cfg").toString(),
                "XDG_STATE_HOME", home.resolve("state").toString()), home, new PrintStream(out, true, StandardCharsets.UTF_8),
                new PrintStream(err, true, StandardCharsets.UTF_8)), args);
        return new Run(code, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
    }

    @Test
    void aRoleWithoutEveryIsAUsageErrorShowingAFullCommand() {
        Run r = kiln("schedule", "local-1a2b3c4d", "data", "--keep", "7");
        assertEquals(ExitCodes.USAGE, r.code(), r.err());
        assertTrue(r.err().contains("--every is required, e.g. kiln schedule local-1a2b3c4d data --every 24h --at 03:00 --keep 7"),
                r.err());
    }

    @Test
    void offTakesNoScheduleAndSettingsNeedARole() {
        Run off = kiln("schedule", "local-1a2b3c4d", "data", "--off", "--every", "1h");
        assertEquals(ExitCodes.USAGE, off.code(), off.err());
        assertTrue(off.err().contains("--off removes the schedule; it takes no --every"), off.err());
        Run noRole = kiln("schedule", "local-1a2b3c4d", "--every", "1h");
        assertEquals(ExitCodes.USAGE, noRole.code(), noRole.err());
        assertTrue(noRole.err().contains("name the volume role to schedule"), noRole.err());
        Run keep = kiln("schedule", "local-1a2b3c4d", "data", "--every", "1h", "--keep", "-1");
        assertEquals(ExitCodes.USAGE, keep.code(), keep.err());
    }
}
