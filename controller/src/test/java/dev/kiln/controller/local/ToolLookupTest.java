package dev.kiln.controller.local;

import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * losetup lives in /usr/sbin on Debian, which a regular user's PATH lacks (root's PATH under some
 * `su` and `sudo` set-ups too): the local provider still finds it.
 */
class ToolLookupTest {

    @Test
    void losetupIsFoundOutsideTheCallersPath() throws Exception {
        assertTrue(Files.isExecutable(Path.of("/usr/sbin/losetup")) || Files.isExecutable(Path.of("/sbin/losetup")),
                "losetup (package mount) is in /usr/sbin or /sbin");
        String java = ProcessHandle.current().info().command().orElseThrow();
        ProcessBuilder pb = new ProcessBuilder(java, "-cp", System.getProperty("java.class.path"), RunLosetup.class.getName())
                .redirectErrorStream(true);
        pb.environment().put("PATH", "/usr/local/bin:/usr/bin:/bin");
        Process p = pb.start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(60, TimeUnit.SECONDS), out);
        assertEquals(0, p.exitValue(), out);
        assertTrue(out.contains("losetup from util-linux"), out);
    }

    /** Runs {@code losetup --version} the way the local provider runs its tools. */
    public static final class RunLosetup {
        public static void main(String[] args) throws Exception {
            System.out.print(LocalTools.run("losetup", "--version"));
        }
    }
}
