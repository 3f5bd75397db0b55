package dev.kiln.os;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.InterruptedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Real programs through OsCommand: what they said, how they ended, and the time limit. */
class OsCommandTest {

    private static final Duration MINUTE = Duration.ofMinutes(1);

    @TempDir
    Path dir;

    @Test
    void reportsTheExitStatusAndEachStreamApart() throws Exception {
        OsCommand.Result r = OsCommand.run(MINUTE, List.of("sh", "-c", "echo out; echo err >&2; exit 3"));
        assertEquals(3, r.exitCode());
        assertFalse(r.ok());
        assertEquals("out\n", r.stdout());
        assertEquals("err\n", r.stderr());
        assertEquals("sh -c echo out; echo err >&2; exit 3 exited 3: out; err", r.describe());
    }

    @Test
    void givesTheProgramNoStdinAndTheEnvironmentItIsHanded() throws Exception {
        // cat on an open stdin would wait for input; on /dev/null it ends at once with nothing.
        assertEquals("", OsCommand.run(MINUTE, List.of("cat")).stdout());
        OsCommand.Result env = OsCommand.run(MINUTE, Map.of("LC_ALL", "C"), List.of("sh", "-c", "echo \"$LC_ALL\""));
        assertEquals("C\n", env.stdout());
    }

    @Test
    void aProgramThatRunsOutOfTimeIsKilledAndSaysSo() throws Exception {
        // The program keeps its stdout open the whole time: the limit holds even so.
        OsCommand.Result r = OsCommand.run(Duration.ofMillis(300), List.of("sh", "-c", "echo started; exec sleep 600"));
        assertEquals(OsCommand.TIMED_OUT, r.exitCode());
        assertEquals("started\n", r.stdout());
        assertEquals("did not finish within PT0.3S", r.stderr());
    }

    @Test
    void aMissingProgramIsAnIoErrorNamingIt() {
        IOException e = assertThrows(IOException.class, () -> OsCommand.run(MINUTE, List.of("/nonexistent/kiln-tool")));
        assertTrue(e.getMessage().contains("/nonexistent/kiln-tool"), e.getMessage());
    }

    @Test
    void anInterruptedWaitKillsTheProgramAndKeepsTheInterrupt() {
        Thread.currentThread().interrupt();
        try {
            InterruptedIOException e = assertThrows(InterruptedIOException.class,
                    () -> OsCommand.run(MINUTE, List.of("sleep", "600")));
            assertEquals("interrupted while running sleep 600", e.getMessage());
            assertTrue(Thread.currentThread().isInterrupted());
        } finally {
            Thread.interrupted();
        }
    }

    @Test
    void theFirstFolderHoldingAnExecutableWins() throws Exception {
        Path empty = Files.createDirectories(dir.resolve("empty"));
        Path plain = Files.createDirectories(dir.resolve("plain"));
        Path tools = Files.createDirectories(dir.resolve("tools"));
        Files.writeString(plain.resolve("mkfs.ext4"), "not executable");
        Path tool = Files.writeString(tools.resolve("mkfs.ext4"), "#!/bin/sh\n");
        Files.setPosixFilePermissions(tool, PosixFilePermissions.fromString("rwxr-xr-x"));
        String path = String.join(":", List.of(empty.toString(), plain.toString(), tools.toString()));
        assertEquals(tool.toString(), dev.kiln.os.Executables.find("mkfs.ext4", path));
        assertEquals("no-such-tool", dev.kiln.os.Executables.find("no-such-tool", path), "left for the JDK to report");
        assertEquals("/bin/true", dev.kiln.os.Executables.find("/bin/true", path), "a path is kept as it is");
    }
}
