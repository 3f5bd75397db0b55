package dev.kiln.e2e;

import dev.kiln.testkit.FreePorts;
import dev.kiln.testkit.Prerequisites;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.io.PrintWriter;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code kiln forward} on the local provider, as a dev-box user runs it: an instance launched
 * with {@code --forward-port} for a web server ({@code python3 -m http.server}, standing in for a
 * notebook) and a line-echo server (standing in for an nREPL) on its loopback; the forwards fetch
 * a page and exchange lines, count as activity, end cleanly on TERM, and are cut by the drain.
 */
class ForwardTest {

    @TempDir
    Path dir;

    Kiln kiln;
    Path home;
    final List<Process> processes = new ArrayList<>();
    ServerSocket echo;
    String id;

    @BeforeEach
    void setUp() throws Exception {
        Prerequisites.requireCommand("ssh", "apt-get install openssh-client");
        Prerequisites.requireCommand("python3", "apt-get install python3");
        Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwxr-xr-x")); // the build user walks in
        home = Files.createDirectories(dir.resolve("home"));
        kiln = new Kiln(home).env("KILN_LOCAL_VOLUMES", "dirs");
        assertEquals(0, kiln.run("init").exitCode());
    }

    @AfterEach
    void tearDown() throws Exception {
        for (Process p : processes) {
            p.destroy();
            p.waitFor(10, TimeUnit.SECONDS);
        }
        if (echo != null) {
            echo.close();
        }
        if (id != null) {
            kiln.run("terminate", id, "--force");
        }
    }

    @Test
    void forwardsAWebServerAndALineServerUntilTermAndTheDrainCutsTheForward() throws Exception {
        // The two servers "on the box" (the local provider's box is this machine), on its loopback.
        int web = FreePorts.loopbackPort();
        Path site = Files.createDirectories(dir.resolve("site"));
        Files.writeString(site.resolve("index.html"), "<h1>notebook stand-in</h1>\n");
        start(List.of("python3", "-m", "http.server", "--bind", "127.0.0.1", Integer.toString(web)), site, dir.resolve("http.log"));
        echo = new ServerSocket();
        echo.bind(new InetSocketAddress(InetAddress.getByName("127.0.0.1"), 0));
        int repl = echo.getLocalPort();
        Thread t = new Thread(this::acceptEcho, "echo");
        t.setDaemon(true);
        t.start();
        awaitListening(web);

        Kiln.Run launch = kiln.run("launch", "--role", "devbox", "--volume", "data:1", "--ttl", "30m",
                "--forward-port", Integer.toString(web), "--forward-port", Integer.toString(repl));
        assertEquals(0, launch.exitCode(), launch.toString());
        id = launch.out().lines().skip(1).findFirst().orElseThrow().split("\\s+")[0];

        // A port the instance does not allow is refused before ssh runs, naming those it allows.
        Kiln.Run refused = kiln.run("forward", id, "9");
        assertEquals(5, refused.exitCode(), refused.toString());
        assertTrue(refused.err().contains("port 9 on " + id + " may not be forwarded (it allows port "), refused.toString());

        // ssh-config --forward holds both ports.
        Kiln.Run config = kiln.run("ssh-config", id, "--forward");
        assertEquals(0, config.exitCode(), config.toString());
        assertTrue(config.out().contains("  LocalForward 127.0.0.1:" + web + " 127.0.0.1:" + web + "\n"), config.out());
        assertTrue(config.out().contains("  LocalForward 127.0.0.1:" + repl + " 127.0.0.1:" + repl + "\n"), config.out());

        // The web server, through a forward on a local port of our choosing.
        int localWeb = FreePorts.loopbackPort();
        Process webForward = forward(id, Integer.toString(web), Integer.toString(localWeb));
        String address = firstLine(webForward, "web.out");
        assertEquals("127.0.0.1:" + localWeb, address);
        HttpResponse<String> page = HttpClient.newHttpClient().send(HttpRequest.newBuilder(URI.create("http://" + address + "/index.html"))
                .timeout(Duration.ofSeconds(30)).build(), HttpResponse.BodyHandlers.ofString());
        assertEquals(200, page.statusCode());
        assertEquals("<h1>notebook stand-in</h1>\n", page.body());

        // TERM (what Ctrl-C's sibling kill sends) ends it cleanly.
        webForward.destroy();
        assertTrue(webForward.waitFor(60, TimeUnit.SECONDS));
        assertEquals(0, webForward.exitValue(), Files.readString(dir.resolve("web.err")));

        // The line server, on its own port number here.
        Process replForward = forward(id, Integer.toString(repl));
        int localRepl = Integer.parseInt(firstLine(replForward, "repl.out").replace("127.0.0.1:", ""));
        try (Socket s = new Socket("127.0.0.1", localRepl)) {
            s.setSoTimeout(60_000);
            BufferedReader in = new BufferedReader(new InputStreamReader(s.getInputStream(), StandardCharsets.UTF_8));
            PrintWriter out = new PrintWriter(s.getOutputStream(), true, StandardCharsets.UTF_8);
            out.println("(+ 1 2)");
            assertEquals("echo: (+ 1 2)", in.readLine());

            // An open forwarded connection keeps the instance busy.
            Kiln.Run status = kiln.run("status", "--agent", id);
            assertEquals(0, status.exitCode(), status.toString());
            // kiln forward's own readiness probe may still be closing, so the count may be 2 for a moment.
            assertTrue(status.out().matches("(?s).*busy\\s+[12] forwarded connections? open \\(to 127\\.0\\.0\\.1:" + repl
                    + "\\).*"), status.out());

            // The drain closes the forward before the volumes go; the client sees its connection end.
            Kiln.Run terminate = kiln.run("terminate", id);
            assertEquals(0, terminate.exitCode(), terminate.toString());
            String after;
            try {
                after = in.readLine();
            } catch (java.net.SocketException reset) {
                after = null;
            }
            assertNull(after, "the forwarded connection ended with the instance");
        }
        id = null;
        assertTrue(replForward.waitFor(60, TimeUnit.SECONDS));
        assertEquals(4, replForward.exitValue(), "the forward ends when its instance does: " + Files.readString(dir.resolve("repl.err")));
        String agentLog = Files.readString(findAgentLog());
        assertTrue(agentLog.contains("closed 1 forwarded connection"), agentLog);
    }

    private Path findAgentLog() throws IOException {
        try (var files = Files.walk(kiln.stateDir())) {
            return files.filter(p -> p.getFileName().toString().equals("agent.log")).findFirst()
                    .orElseThrow(() -> new AssertionError("no agent.log under " + kiln.stateDir()));
        }
    }

    /** {@code bin/kiln forward ARGS} in the same Kiln home, stopped after the test. */
    private Process forward(String... args) throws IOException {
        Process p = KilnForward.start(dir, home, args.length == 3 ? "web" : "repl", args);
        processes.add(p);
        return p;
    }

    private String firstLine(Process p, String file) throws Exception {
        return KilnForward.firstLine(p, dir, file.replace(".out", ""));
    }

    private void start(List<String> cmd, Path workDir, Path log) throws IOException {
        processes.add(new ProcessBuilder(cmd).directory(workDir.toFile()).redirectErrorStream(true)
                .redirectOutput(log.toFile()).start());
    }

    private static void awaitListening(int port) throws Exception {
        for (int i = 0; i < 600; i++) {
            try (Socket s = new Socket()) {
                s.connect(new InetSocketAddress("127.0.0.1", port), 500);
                return;
            } catch (IOException e) {
                Thread.sleep(50);
            }
        }
        throw new AssertionError("nothing listens on " + port);
    }

    private void acceptEcho() {
        while (!echo.isClosed()) {
            try {
                Socket s = echo.accept();
                Thread t = new Thread(() -> {
                    try (s; BufferedReader in = new BufferedReader(new InputStreamReader(s.getInputStream(), StandardCharsets.UTF_8));
                         OutputStream out = s.getOutputStream()) {
                        String line;
                        while ((line = in.readLine()) != null) {
                            out.write(("echo: " + line + "\n").getBytes(StandardCharsets.UTF_8));
                            out.flush();
                        }
                    } catch (IOException e) {
                        // the client went away
                    }
                }, "echo-conn");
                t.setDaemon(true);
                t.start();
            } catch (IOException e) {
                return;
            }
        }
    }
}
