package dev.kiln.testkit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.opentest4j.AssertionFailedError;
import org.opentest4j.TestAbortedException;

class PrerequisitesTest {

    private static final String MISSING = "kiln-testkit-no-such-command";

    @Test
    void missingCommandSkipsTheTestOnADevelopersMachine() {
        TestAbortedException skipped = assertThrows(TestAbortedException.class,
                () -> Prerequisites.requireCommand(MISSING, "apt-get install kiln-thing", null));

        assertTrue(skipped.getMessage().contains(MISSING), skipped.getMessage());
        assertTrue(skipped.getMessage().contains("apt-get install kiln-thing"), skipped.getMessage());
    }

    @Test
    void missingCommandFailsTheTestUnderCi() {
        AssertionFailedError failed = assertThrows(AssertionFailedError.class,
                () -> Prerequisites.requireCommand(MISSING, "apt-get install kiln-thing", "true"));

        assertTrue(failed.getMessage().contains(MISSING), failed.getMessage());
        assertTrue(failed.getMessage().contains("apt-get install kiln-thing"), failed.getMessage());
    }

    @Test
    void onlyCiTrueTurnsASkipIntoAFailure() {
        assertEquals(Prerequisites.Outcome.FAIL, Prerequisites.decide(false, "true"));
        assertEquals(Prerequisites.Outcome.FAIL, Prerequisites.decide(false, "TRUE"));
        assertEquals(Prerequisites.Outcome.SKIP, Prerequisites.decide(false, null));
        assertEquals(Prerequisites.Outcome.SKIP, Prerequisites.decide(false, "false"));
        assertEquals(Prerequisites.Outcome.SKIP, Prerequisites.decide(false, ""));
    }

    @Test
    void presentPrerequisiteRunsTheTestWhateverCiSays() {
        assertEquals(Prerequisites.Outcome.RUN, Prerequisites.decide(true, "true"));
        assertEquals(Prerequisites.Outcome.RUN, Prerequisites.decide(true, null));
        Prerequisites.require("something present", true, "nothing to install", "true");
    }

    @Test
    void presentCommandIsFoundOnThePathAsAnAbsolutePath() {
        Path sh = Prerequisites.requireCommand("sh", "apt-get install dash", "true");

        assertTrue(sh.isAbsolute(), sh.toString());
        assertTrue(Files.isExecutable(sh), sh.toString());
        assertEquals("sh", sh.getFileName().toString());
    }

    @Test
    void commandLookupFollowsThePathInOrderAndSkipsNonExecutables(@TempDir Path dir) throws Exception {
        Path first = Files.createDirectory(dir.resolve("first"));
        Path second = Files.createDirectory(dir.resolve("second"));
        Files.writeString(first.resolve("tool"), "not executable");
        Path executable = Files.writeString(second.resolve("tool"), "#!/bin/sh\n");
        executable.toFile().setExecutable(true);

        assertEquals(executable, Prerequisites.findCommand("tool", first + ":" + second).orElseThrow());
        assertTrue(Prerequisites.findCommand("tool", first.toString()).isEmpty());
    }

    @Test
    void rootToolsAreFoundEvenWithoutSbinOnThePath() {
        // losetup lives in /usr/sbin on Debian, which a non-login PATH may lack.
        Path losetup = Prerequisites.findCommand("losetup", "/nonexistent").orElseThrow();

        assertTrue(losetup.toString().contains("sbin"), losetup.toString());
    }
}
