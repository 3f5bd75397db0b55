package dev.kiln.e2e;

import dev.kiln.testkit.Prerequisites;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The idle timeout with a real SFTP client: an open session keeps the agent alive; closing it starts the clock. */
class IdleTest {

    @TempDir
    Path home;

    Kiln kiln;

    @AfterEach
    void down() {
        if (kiln != null) {
            kiln.run("down", "--local");
        }
    }

    @Test
    void anOpenSftpSessionKeepsTheAgentAliveAndClosingItStartsTheIdleClock() throws Exception {
        Path sftp = Prerequisites.requireCommand("sftp", "apt-get install openssh-client");
        kiln = new Kiln(home);
        Path outputs = Files.createDirectories(home.resolve("outputs"));
        Files.writeString(outputs.resolve("track.txt"), "la la la\n");
        Kiln.Run up = kiln.run("up", "--local", "--idle-timeout", "8s", "--serve", outputs.toString(), "--ssh-port", "0");
        assertEquals(0, up.exitCode(), up.toString());
        long pid = Long.parseLong(Files.readString(kiln.stateDir().resolve("local-agent/agent.pid")).trim());
        Kiln.Run config = kiln.run("ssh-config");
        assertEquals(0, config.exitCode(), config.toString());
        Path sshConfig = home.resolve("ssh_config");
        Files.writeString(sshConfig, config.out());
        String host = config.out().lines().filter(l -> l.startsWith("Host ")).findFirst().orElseThrow().substring(5).trim();

        Process session = new ProcessBuilder(sftp.toString(), "-F", sshConfig.toString(), "-b", "-", host)
                .redirectErrorStream(true).start();
        OutputStream in = session.getOutputStream();
        in.write("ls /outputs\n".getBytes(StandardCharsets.US_ASCII));
        in.flush();
        BufferedReader out = new BufferedReader(new InputStreamReader(session.getInputStream(), StandardCharsets.UTF_8));
        String line;
        StringBuilder seen = new StringBuilder();
        while ((line = out.readLine()) != null && !line.contains("track.txt")) {
            seen.append(line).append('\n');
        }
        assertTrue(line != null, "the sftp session lists the outputs: " + seen);

        Kiln.Run busy = kiln.run("status");
        assertTrue(busy.out().matches("(?s).*busy\\s+1 SSH session open\n.*"), busy.out());
        Thread.sleep(12_000); // longer than the idle timeout
        assertTrue(ProcessHandle.of(pid).map(ProcessHandle::isAlive).orElse(false), "the open session kept the agent alive");

        in.close(); // the client ends its session
        assertTrue(session.waitFor(30, TimeUnit.SECONDS));
        Instant closed = Instant.now();
        while (ProcessHandle.of(pid).map(ProcessHandle::isAlive).orElse(false)) {
            assertTrue(Duration.between(closed, Instant.now()).toSeconds() < 40, "the agent ended after its idle timeout");
            Thread.sleep(200);
        }
        long took = Duration.between(closed, Instant.now()).toMillis();
        System.out.println("idle: session closed to agent exit " + took + " ms (idle timeout 8 s)");
        assertTrue(took >= 7000, "not before the idle timeout: " + took + " ms");
        String log = Files.readString(kiln.stateDir().resolve("local-agent/state/logs/agent.log"));
        assertTrue(log.contains("draining: IDLE"), log);
    }
}
