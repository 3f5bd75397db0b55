package dev.kiln.agent.volume;

import dev.kiln.os.OsCommand;
import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The disk tools live in /sbin and /usr/sbin on Debian, which a regular user's PATH lacks: an
 * agent started from such a PATH (a local agent of a non-root `kiln launch`, say) still finds them.
 */
class ToolLookupTest {

    @Test
    void aToolOutsideTheAgentsPathIsFoundInTheSbinFolders() throws Exception {
        Path blkid = Path.of("/usr/sbin/blkid");
        if (!Files.isExecutable(blkid)) {
            blkid = Path.of("/sbin/blkid");
        }
        assertTrue(Files.isExecutable(blkid), "blkid (util-linux) is in /usr/sbin or /sbin");
        // A JVM whose PATH holds only the user folders runs blkid through OsDiskTools.
        String java = ProcessHandle.current().info().command().orElseThrow();
        ProcessBuilder pb = new ProcessBuilder(java, "-cp", System.getProperty("java.class.path"), RunBlkid.class.getName())
                .redirectErrorStream(true);
        pb.environment().put("PATH", "/usr/local/bin:/usr/bin:/bin");
        Process p = pb.start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(60, TimeUnit.SECONDS), out);
        assertEquals(0, p.exitValue(), out);
        assertTrue(out.contains("blkid from util-linux"), out);
    }

    /** Runs {@code blkid --version} the way the agent runs its tools, and prints what it said. */
    public static final class RunBlkid {
        public static void main(String[] args) throws Exception {
            OsCommand.Result r = OsDiskTools.run(Duration.ofMinutes(1), "blkid", "--version");
            System.out.println("exit " + r.exitCode() + ": " + r.stdout() + r.stderr());
            System.exit(r.exitCode());
        }
    }
}
