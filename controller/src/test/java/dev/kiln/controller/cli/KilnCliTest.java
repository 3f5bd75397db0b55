package dev.kiln.controller.cli;

import dev.kiln.controller.ExitCodes;
import dev.kiln.controller.KilnCli;
import dev.kiln.controller.config.CliEnvironment;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

class KilnCliTest {

    @TempDir
    Path home;

    record Run(int code, String out, String err) {
    }

    Run kiln(Map<String, String> env, String... args) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        Map<String, String> e = new HashMap<>(env);
        e.putIfAbsent("XDG_CONFIG_HOME", home.resolve("cfg").toString());
        e.putIfAbsent("XDG_STATE_HOME", home.resolve("state").toString());
        int code = KilnCli.run(new CliEnvironment(e, home, new PrintStream(out, true, StandardCharsets.UTF_8),
                new PrintStream(err, true, StandardCharsets.UTF_8)), args);
        return new Run(code, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
    }

    Run kiln(String... args) {
        return kiln(Map.of(), args);
    }

    @Test
    void printsItsVersion() {
        Run r = kiln("--version");
        assertEquals(0, r.code());
        assertTrue(r.out().matches("kiln \\d+\\.\\d+\\.\\d+.*\n"), r.out());
    }

    @Test
    void helpListsTheCommandsAndTheExitCodes() {
        Run r = kiln("help");
        assertEquals(0, r.code());
        for (String command : new String[]{"init", "up", "down", "status", "completion"}) {
            assertTrue(r.out().contains("  " + command + " "), command + " missing from:\n" + r.out());
        }
        assertTrue(r.out().contains("Exit codes:"), r.out());
    }

    @Test
    void helpEndsEveryCommandsSummaryWithASentenceAndWrapsDescriptionsAsParagraphs() {
        Run help = kiln("--help");
        assertEquals(0, help.code());
        for (String line : help.out().lines().toList()) {
            assertTrue(line.length() <= 80, "wider than 80 columns: '" + line + "'");
        }
        String commands = help.out().substring(help.out().indexOf("Commands:"), help.out().indexOf("Exit codes:"));
        for (String entry : commands.split("\n(?=  [a-z])")) {
            if (entry.startsWith("  ")) {
                assertTrue(entry.strip().endsWith("."), "summary cut mid-sentence: '" + entry + "'");
            }
        }
        assertTrue(help.out().matches("(?s).*\n  extend +Move the lease deadline later\\.\n.*"), help.out());
        assertTrue(help.out().matches("(?s).*\n  help +Display help information about the specified command\\.\n.*"), help.out());

        Run extend = kiln("extend", "--help");
        assertEquals(0, extend.code());
        String flat = extend.out().replaceAll("\\s+", " ");
        assertTrue(flat.contains("from the current deadline, or to --until TIME (ISO-8601"), extend.out());
        assertTrue(extend.out().contains("\n  kiln extend local-1a2b3c4d 30m\n"), "examples keep their own lines: " + extend.out());
        for (String line : extend.out().lines().toList()) {
            assertTrue(line.length() <= 80, "wider than 80 columns: '" + line + "'");
            assertFalse(line.endsWith(" or to") || line.endsWith(" deadline") || line.equals("local"),
                    "a source line break shows in help: '" + line + "'");
        }
    }

    @Test
    void helpAndCompletionCoverEverySubcommandAndACommandsOwnHelpStillWorks() {
        // Only the command a line runs is added to picocli's model (KilnCommand.addSubcommands);
        // help and completion must still see them all.
        Run help = kiln("help");
        Run completion = kiln("completion");
        for (Class<?> c : KilnCommand.SUBCOMMANDS) {
            String name = c.getAnnotation(picocli.CommandLine.Command.class).name();
            assertTrue(help.out().contains("  " + name + " "), name + " missing from help:\n" + help.out());
            assertTrue(completion.out().contains(name), name + " missing from the completion script");
        }
        Run status = kiln("status", "--help");
        assertEquals(0, status.code(), status.err());
        assertTrue(status.out().startsWith("Usage: kiln status "), status.out());
        Run misspelt = kiln("statu");
        assertEquals(ExitCodes.USAGE, misspelt.code());
        assertTrue(misspelt.err().contains("Did you mean: kiln status"), misspelt.err());
    }

    @Test
    void anUnknownCommandIsAUsageError() {
        Run r = kiln("lauch");
        assertEquals(ExitCodes.USAGE, r.code());
        assertTrue(r.err().contains("Unmatched argument at index 0: 'lauch'"), r.err());
    }

    @Test
    void noCommandPrintsUsageAndFails() {
        Run r = kiln();
        assertEquals(ExitCodes.USAGE, r.code());
        assertTrue(r.err().contains("Usage: kiln"), r.err());
    }

    @Test
    void completionScriptCoversSubcommands() {
        Run r = kiln("completion");
        assertEquals(0, r.code());
        assertTrue(r.out().contains("complete -F _complete_kiln"), r.out().lines().limit(5).toList().toString());
        assertTrue(r.out().contains("init"), "mentions init");
    }

    @Test
    void aMalformedAgentAddressIsAUsageError() {
        assertEquals(0, kiln("init").code());
        Run r = kiln("status", "--agent", "localhost");
        assertEquals(ExitCodes.USAGE, r.code());
        assertTrue(r.err().contains("agent address 'localhost' must be HOST:PORT"), r.err());
    }

    @Test
    void statusBeforeInitSaysToRunInit() {
        Run r = kiln("status", "--agent", "127.0.0.1:1");
        assertEquals(ExitCodes.CONFIG, r.code());
        assertTrue(r.err().contains("run `kiln init` first"), r.err());
    }

    @Test
    void flagBeatsEnvironmentWhichBeatsTheConfigFile() throws Exception {
        assertEquals(0, kiln("init").code());
        Files.writeString(home.resolve("cfg/kiln/config.yml"), "output: yaml\n");
        // config.yml's value is used when nothing overrides it: an invalid format proves it was read.
        Run fromFile = kiln("status", "--agent", "127.0.0.1:1");
        assertEquals(ExitCodes.USAGE, fromFile.code(), fromFile.err());
        assertTrue(fromFile.err().contains("unknown output format 'yaml'"), fromFile.err());
        // The environment beats the file...
        Run fromEnv = kiln(Map.of("KILN_OUTPUT", "xml"), "status", "--agent", "127.0.0.1:1");
        assertTrue(fromEnv.err().contains("unknown output format 'xml'"), fromEnv.err());
        // ...and the flag beats both (then the connection fails, which is the point: it got that far).
        Run fromFlag = kiln(Map.of("KILN_OUTPUT", "xml"), "status", "--agent", "127.0.0.1:1", "-o", "json", "--timeout", "3s");
        assertEquals(ExitCodes.UNREACHABLE, fromFlag.code(), fromFlag.err());
    }

    @Test
    void anUnknownKeyInTheConfigFileIsNamed() throws Exception {
        assertEquals(0, kiln("init").code());
        Files.writeString(home.resolve("cfg/kiln/config.yml"), "agnet: 127.0.0.1:7443\n");
        Run r = kiln("status");
        assertEquals(ExitCodes.CONFIG, r.code());
        assertTrue(r.err().contains("unknown setting 'agnet' in " + home.resolve("cfg/kiln/config.yml")), r.err());
    }

    @Test
    void upWithoutLocalSaysWhatItDoes() {
        Run r = kiln("up");
        assertEquals(ExitCodes.USAGE, r.code());
        assertTrue(r.err().contains("`kiln up` needs --local"), r.err());
    }

    @Test
    void helpListsTheVolumeCommands() {
        Run r = kiln("help");
        for (String command : new String[]{"volumes", "mount", "unmount", "freeze", "thaw"}) {
            assertTrue(r.out().contains("  " + command + " "), command + " missing from:\n" + r.out());
        }
    }

    @Test
    void mountArgumentMistakesAreUsageErrorsBeforeAnyAgentIsAsked() {
        Run overlay = kiln("mount", "--agent", "127.0.0.1:1", "--lower", "/a", "--upper", "/b", "vol-0123456789abcdef0", "/mnt/x");
        assertEquals(ExitCodes.USAGE, overlay.code(), overlay.err());
        assertEquals("kiln: an overlay takes only the mount point: kiln mount --lower DIR --upper DIR MOUNT_POINT\n", overlay.err());
        Run half = kiln("mount", "--agent", "127.0.0.1:1", "--lower", "/a", "/mnt/x");
        assertEquals("kiln: an overlay needs both --lower (the sources) and --upper (the outputs)\n", half.err());
        Run one = kiln("mount", "--agent", "127.0.0.1:1", "/mnt/x");
        assertEquals(ExitCodes.USAGE, one.code());
        assertTrue(one.err().startsWith("kiln: give the volume and the mount point"), one.err());
        Run both = kiln("mount", "--agent", "127.0.0.1:1", "--device", "/dev/sdf", "/dev/loop3", "/mnt/x");
        assertEquals("kiln: --device is a hint for a volume id; /dev/loop3 is already a device\n", both.err());
    }

    @Test
    void aHandshakeThatNeverFinishesBeforeTheDeadlineIsNoAnswerNotACertificateProblem() throws Exception {
        assertEquals(0, kiln("init").code());
        // The TLS handshake's own limit (Netty's 10 s) runs out before this call's 30 s deadline.
        try (java.net.ServerSocket silent = new java.net.ServerSocket(0, 50, java.net.InetAddress.getLoopbackAddress())) {
            String address = "127.0.0.1:" + silent.getLocalPort();
            Run r = kiln("status", "--agent", address, "--timeout", "30s");
            assertEquals(ExitCodes.UNREACHABLE, r.code(), r.err());
            assertEquals("kiln: no answer from " + address + " in 10s; is kiln-agent running there, and not stuck? (it accepted"
                    + " the connection but did not finish the TLS handshake)\n", r.err());
        }
    }

    @Test
    void statusAgainstAnAgentThatNeverAnswersNamesTheAddressAndTheDeadline() throws Exception {
        assertEquals(0, kiln("init").code());
        // A listener that accepts connections and never says a word: no TLS handshake, no answer.
        try (java.net.ServerSocket silent = new java.net.ServerSocket(0, 50, java.net.InetAddress.getLoopbackAddress())) {
            String address = "127.0.0.1:" + silent.getLocalPort();
            Run r = kiln("status", "--agent", address);
            assertEquals(ExitCodes.UNREACHABLE, r.code(), r.err());
            assertTrue(r.err().startsWith("kiln: no answer from " + address + " in 10s; "), r.err());
            assertFalse(r.err().contains("DEADLINE_EXCEEDED"), r.err());
            assertFalse(r.err().contains("io.grpc"), r.err());
        }
    }

    @Test
    void anAgentCallsFailureIsTranslatedForEveryCommandNamingTheAgentAndItsDeadline() throws Exception {
        assertEquals(0, kiln("init").code());
        int closed;
        try (java.net.ServerSocket s = new java.net.ServerSocket(0, 50, java.net.InetAddress.getLoopbackAddress())) {
            closed = s.getLocalPort();
        }
        Run refused = kiln("thaw", "--agent", "127.0.0.1:" + closed, "/mnt/x");
        assertEquals(ExitCodes.UNREACHABLE, refused.code(), refused.err());
        assertTrue(refused.err().startsWith("kiln: cannot connect to agent 127.0.0.1:" + closed + ": connection refused"),
                refused.err());
        try (java.net.ServerSocket silent = new java.net.ServerSocket(0, 50, java.net.InetAddress.getLoopbackAddress())) {
            String address = "127.0.0.1:" + silent.getLocalPort();
            Run r = kiln("cancel", "--agent", address, "--timeout", "1s", "b-1");
            assertEquals(ExitCodes.UNREACHABLE, r.code(), r.err());
            assertTrue(r.err().startsWith("kiln: no answer from " + address + " in 1s; "), r.err());
            assertFalse(r.err().contains("unexpected error"), r.err());
            Run fromEnv = kiln(Map.of("KILN_TIMEOUT", "1s"), "builds", "--agent", address);
            assertEquals(ExitCodes.UNREACHABLE, fromEnv.code(), fromEnv.err());
            assertTrue(fromEnv.err().startsWith("kiln: no answer from " + address + " in 1s; "), fromEnv.err());
        }
    }

    @Test
    void eachCommandsTimeoutHelpNamesItsOwnDefault() {
        String freeze = kiln("freeze", "--help").out().replaceAll("\\s+", " ");
        assertTrue(freeze.contains("--timeout=DURATION Request timeout (default: 5m; freezing flushes the filesystem)."), freeze);
        String status = kiln("status", "--help").out().replaceAll("\\s+", " ");
        assertTrue(status.contains("--timeout=DURATION How long to wait for the agent's answer (default: 10s; env KILN_TIMEOUT,"
                + " config.yml timeout)."), status);
        String cancel = kiln("cancel", "--help").out().replaceAll("\\s+", " ");
        assertTrue(cancel.contains("--timeout=DURATION Request timeout (default: 60s)."), cancel);
    }
}
