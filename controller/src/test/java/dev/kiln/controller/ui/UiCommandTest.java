package dev.kiln.controller.ui;

import dev.kiln.controller.ExitCodes;
import dev.kiln.controller.KilnCli;
import dev.kiln.controller.config.CliEnvironment;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** `kiln ui`'s refusals before it serves anything. */
class UiCommandTest {

    @TempDir
    Path home;

    int run(ByteArrayOutputStream err, String... args) {
        Map<String, String> env = Map.of("XDG_CONFIG_HOME", home.resolve(".config").toString(),
                "XDG_STATE_HOME", home.resolve(".local/state").toString());
        return KilnCli.run(new CliEnvironment(env, home, new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8),
                new PrintStream(err, true, StandardCharsets.UTF_8)), args);
    }

    @Test
    void aPortInUseIsAnErrorThatSaysWhatToDo() throws Exception {
        try (ServerSocket taken = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            ByteArrayOutputStream err = new ByteArrayOutputStream();
            int code = run(err, "ui", "--no-browser", "--port", Integer.toString(taken.getLocalPort()));
            String text = err.toString(StandardCharsets.UTF_8);
            assertEquals(ExitCodes.FAILURE, code, text);
            assertTrue(text.contains("kiln: cannot serve on 127.0.0.1:" + taken.getLocalPort() + " ("), text);
            assertTrue(text.contains("Give another --port, or --port 0 for any free one"), text);
        }
    }

    @Test
    void aBindAddressThatIsNoIpAddressIsAUsageError() {
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        int code = run(err, "ui", "--no-browser", "--bind", "dashboard.example");
        String text = err.toString(StandardCharsets.UTF_8);
        assertEquals(ExitCodes.USAGE, code, text);
        assertTrue(text.contains("--bind dashboard.example is not an IP address of this machine"), text);
    }
}
