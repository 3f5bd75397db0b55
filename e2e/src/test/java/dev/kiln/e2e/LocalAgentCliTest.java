package dev.kiln.e2e;

import dev.kiln.controller.ExitCodes;
import dev.kiln.controller.local.LocalAgent;
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
        // The systemd unit's environment beside its JVM options (unless this test's own sets it).
        String environ = Files.readString(Path.of("/proc/" + pid + "/environ"));
        String arenas = System.getenv().getOrDefault("MALLOC_ARENA_MAX", LocalAgent.DEFAULT_ENVIRONMENT.get("MALLOC_ARENA_MAX"));
        assertTrue(("\0" + environ).contains("\0MALLOC_ARENA_MAX=" + arenas + "\0"), environ);

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

    /**
     * A local agent maps an AppCDS archive of its classes: the first `up` after a new agent jar
     * makes it (a training agent started and stopped once), later ones only map it, and
     * KILN_NO_CDS=1 goes without. The jar is copied into this test's directory so the archive made
     * here is this test's own.
     */
    @Test
    void theAgentMapsAClassDataArchiveMadeOncePerJar() throws Exception {
        Path jarDir = Files.createDirectories(home.resolve("jar"));
        Path jar = Files.copy(AgentProcess.jar(), jarDir.resolve("kiln-agent.jar"));
        kiln = new Kiln(home).env("KILN_AGENT_JAR", jar.toString());
        Kiln.Run first = kiln.run("up", "--local", "--ssh-port", "0");
        assertEquals(0, first.exitCode(), first.toString());
        assertTrue(first.err().contains("making the agent's class-data archive"), first.toString());
        Path archive;
        try (var files = Files.list(jarDir)) {
            archive = files.filter(f -> f.getFileName().toString().endsWith(".jsa")).findFirst().orElseThrow();
        }
        assertTrue(archive.getFileName().toString().startsWith("kiln-agent-" + Files.size(jar) + "-"), archive.toString());
        assertTrue(mapped(agentPid()).contains(archive.toString()), "the agent's JVM maps " + archive);
        assertEquals(0, kiln.run("down", "--local").exitCode());

        Kiln.Run second = kiln.run("up", "--local", "--ssh-port", "0");
        assertEquals(0, second.exitCode(), second.toString());
        assertFalse(second.err().contains("making the agent's class-data archive"), second.toString());
        assertTrue(mapped(agentPid()).contains(archive.toString()), "the second agent maps the same archive");
        assertEquals(0, kiln.run("down", "--local").exitCode());

        Kiln without = kiln.env("KILN_NO_CDS", "1");
        Kiln.Run third = without.run("up", "--local", "--ssh-port", "0");
        assertEquals(0, third.exitCode(), third.toString());
        assertFalse(mapped(agentPid()).contains(archive.toString()), "KILN_NO_CDS=1: the archive is not mapped");
        try (var files = Files.list(home.resolve(".local/state/kiln"))) {
            assertTrue(files.noneMatch(f -> f.getFileName().toString().startsWith("cds-training-")),
                    "the training agent's directory is gone");
        }
    }

    long agentPid() throws Exception {
        return Long.parseLong(Files.readString(kiln.stateDir().resolve("local-agent/agent.pid")).trim());
    }

    static String mapped(long pid) throws Exception {
        return Files.readString(Path.of("/proc", Long.toString(pid), "maps"));
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
