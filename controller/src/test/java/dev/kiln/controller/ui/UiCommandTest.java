package dev.kiln.controller.ui;

import dev.kiln.controller.ExitCodes;
import dev.kiln.controller.KilnCli;
import dev.kiln.controller.config.CliEnvironment;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.net.Socket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
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

    /**
     * The browser's command line, which every local user sees in ps, carries no token: it names a
     * page only this user can read, which leads to the dashboard. The browser is a script that
     * records what it got (no real browser is needed to see its argv).
     */
    @Test
    void theBrowserGetsAPrivateFileNotTheToken() throws Exception {
        Path seen = home.resolve("seen");
        Path browser = home.resolve("browser");
        Files.writeString(browser, "#!/bin/sh\nd=" + seen + "\nmkdir -p $d\nstat -c %a \"${1#file://}\" > $d/mode.tmp\n"
                + "stat -c %a \"$(dirname \"${1#file://}\")\" > $d/dirmode.tmp\ncp \"${1#file://}\" $d/page.tmp\n"
                + "printf '%s\\n' \"$@\" > $d/argv.tmp\nfor f in mode dirmode page argv; do mv $d/$f.tmp $d/$f; done\n");
        Files.setPosixFilePermissions(browser, PosixFilePermissions.fromString("rwx------"));
        Path runtime = home.resolve("run");
        Files.createDirectories(runtime);
        Map<String, String> env = Map.of("XDG_CONFIG_HOME", home.resolve(".config").toString(),
                "XDG_STATE_HOME", home.resolve(".local/state").toString(), "XDG_RUNTIME_DIR", runtime.toString(),
                "BROWSER", browser.toString());
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        int[] code = {-1};
        Thread ui = new Thread(() -> code[0] = KilnCli.run(new CliEnvironment(env, home, new PrintStream(out, true, StandardCharsets.UTF_8),
                new PrintStream(err, true, StandardCharsets.UTF_8)), "ui", "--port", "0"));
        ui.start();
        try {
            while (!Files.exists(seen.resolve("argv"))) {
                assertTrue(ui.isAlive(), err.toString(StandardCharsets.UTF_8));
                Thread.sleep(50);
            }
            Matcher printed = Pattern.compile("http://127\\.0\\.0\\.1:(\\d+)/\\?token=([A-Za-z0-9_-]+)").matcher(out.toString(StandardCharsets.UTF_8));
            assertTrue(printed.find(), "the URL with the token is still printed for the user: " + out);
            String token = printed.group(2);
            String argv = Files.readString(seen.resolve("argv"));
            assertFalse(argv.contains(token), argv);
            assertTrue(argv.strip().startsWith("file://" + runtime.resolve("kiln")), argv);
            assertEquals("600", Files.readString(seen.resolve("mode")).strip());
            assertEquals("700", Files.readString(seen.resolve("dirmode")).strip());

            // The page leads to the dashboard: its URL's token gets the session cookie, and the cookie the page.
            Matcher target = Pattern.compile("url=(http://127\\.0\\.0\\.1:\\d+/\\?token=[A-Za-z0-9_-]+)\"")
                    .matcher(Files.readString(seen.resolve("page")));
            assertTrue(target.find(), Files.readString(seen.resolve("page")));
            HttpClient http = HttpClient.newHttpClient();
            HttpResponse<String> exchange = http.send(HttpRequest.newBuilder(URI.create(target.group(1))).build(),
                    HttpResponse.BodyHandlers.ofString());
            assertEquals(303, exchange.statusCode());
            String cookie = exchange.headers().firstValue("Set-Cookie").orElseThrow().split(";")[0];
            assertTrue(cookie.startsWith("kiln-ui-" + printed.group(1) + "="), cookie);
            assertFalse(cookie.contains(token), "the cookie holds a session secret, not the token: " + cookie);
            HttpResponse<String> page = http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + printed.group(1) + "/"))
                    .header("Cookie", "kiln-ui-" + printed.group(1) + "=attacker; " + cookie).build(), HttpResponse.BodyHandlers.ofString());
            assertEquals(200, page.statusCode(), page.body());
            assertTrue(page.body().contains("kiln-csrf"), page.body());

            // DNS rebinding: the right token, sent to another host name, is refused and audited.
            try (Socket s = new Socket(InetAddress.getLoopbackAddress(), Integer.parseInt(printed.group(1)))) {
                s.getOutputStream().write(("GET /?token=" + token + " HTTP/1.1\r\nHost: rebind.attacker.example:" + printed.group(1)
                        + "\r\nConnection: close\r\n\r\n").getBytes(StandardCharsets.US_ASCII));
                String answer = new String(s.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
                assertTrue(answer.startsWith("HTTP/1.1 421 "), answer);
                assertFalse(answer.toLowerCase(java.util.Locale.ROOT).contains("set-cookie"), answer);
            }
            assertTrue(err.toString(StandardCharsets.UTF_8).contains("refused GET / (421): Host rebind.attacker.example:"),
                    err.toString(StandardCharsets.UTF_8));
        } finally {
            ui.interrupt();
            ui.join();
        }
        assertEquals(ExitCodes.OK, code[0], err.toString(StandardCharsets.UTF_8));
        try (var left = Files.list(runtime.resolve("kiln"))) {
            assertEquals(List.of(), left.toList(), "the page and its directory go when kiln ui ends");
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
