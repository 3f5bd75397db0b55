package dev.kiln.e2e;

import dev.kiln.controller.ExitCodes;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** `kiln up --local`, `kiln status`, `kiln down --local` as a new user runs them. */
class LocalAgentCliTest {

    @TempDir
    Path home;

    Kiln kiln;

    @AfterEach
    void stopAnythingLeft() {
        if (kiln != null) {
            kiln.run("down", "--local");
        }
    }

    @Test
    void upStartsAnAgentThatStatusReportsOnAndDownStopsIt() throws Exception {
        kiln = new Kiln(home);
        Kiln.Run up = kiln.run("up", "--local");
        assertEquals(0, up.exitCode(), up.toString());
        assertTrue(up.err().contains("initialising"), "up initialises a fresh controller: " + up);
        Path agentDir = kiln.stateDir().resolve("local-agent");
        long pid = Long.parseLong(Files.readString(agentDir.resolve("agent.pid")).trim());
        assertTrue(ProcessHandle.of(pid).map(ProcessHandle::isAlive).orElse(false), "agent process is alive");
        assertTrue(Files.readString(agentDir.resolve("agent.log")).contains("listening on 127.0.0.1:"));

        Kiln.Run status = kiln.run("status");
        assertEquals(0, status.exitCode(), status.toString());
        assertTrue(status.out().matches("(?s).*mode\\s+local\n.*"), status.out());
        assertTrue(status.out().matches("(?s).*state\\s+ready\n.*"), status.out());

        Kiln.Run again = kiln.run("up", "--local");
        assertEquals(0, again.exitCode(), again.toString());
        assertTrue(again.err().contains("already running (pid " + pid + ")"), again.toString());

        Kiln.Run down = kiln.run("down", "--local");
        assertEquals(0, down.exitCode(), down.toString());
        assertTrue(down.err().contains("stopped the local agent (pid " + pid + ")"), down.toString());
        assertFalse(ProcessHandle.of(pid).map(ProcessHandle::isAlive).orElse(false), "agent process is gone");
        assertFalse(Files.exists(agentDir.resolve("agent.pid")));

        Kiln.Run after = kiln.run("status");
        assertEquals(ExitCodes.UNREACHABLE, after.exitCode(), after.toString());
        assertTrue(after.err().contains("connection refused"), after.toString());

        Kiln.Run downAgain = kiln.run("down", "--local");
        assertEquals(0, downAgain.exitCode(), downAgain.toString());
        assertTrue(downAgain.err().contains("no local agent was running"), downAgain.toString());
    }

    @Test
    void downNeverStopsAProcessThatIsNotItsAgent() throws Exception {
        kiln = new Kiln(home);
        Process bystander = new ProcessBuilder("sleep", "60").start();
        try {
            Path agentDir = kiln.stateDir().resolve("local-agent");
            Files.createDirectories(agentDir);
            // A stale pid file whose number now belongs to somebody else's process.
            Files.writeString(agentDir.resolve("agent.pid"), bystander.pid() + "\n");
            Kiln.Run down = kiln.run("down", "--local");
            assertEquals(0, down.exitCode(), down.toString());
            assertTrue(down.err().contains("no local agent was running"), down.toString());
            assertTrue(bystander.isAlive(), "the unrelated process is untouched");
        } finally {
            bystander.destroy();
            bystander.waitFor(10, TimeUnit.SECONDS);
        }
    }

    @Test
    void upReportsTheAgentsOwnErrorWhenItCannotStart() throws Exception {
        kiln = new Kiln(home).env("KILN_AGENT_JAR", home.resolve("no-such-agent.jar").toString());
        Kiln.Run up = kiln.run("up", "--local");
        assertEquals(ExitCodes.CONFIG, up.exitCode(), up.toString());
        assertTrue(up.err().contains("kiln-agent jar not found at " + home.resolve("no-such-agent.jar")), up.toString());
    }

    @Test
    void statusWithoutAnyAgentSaysHowToGetOne() {
        kiln = new Kiln(home);
        assertEquals(0, kiln.run("init").exitCode());
        Kiln.Run status = kiln.run("status");
        assertEquals(ExitCodes.CONFIG, status.exitCode(), status.toString());
        assertTrue(status.err().contains("pass --agent HOST:PORT or run `kiln up --local`"), status.toString());
    }
}
