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
import java.io.PrintWriter;
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
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The dev box of docs/devbox.md on the local provider: a kept {@code data} volume and two services
 * the agent runs on its loopback (python's http.server standing in for the notebook, a line-echo
 * server for the nREPL), reached by name through {@code kiln forward}, with no
 * {@code --forward-port}: a service's port is forwardable because it is declared. The box ends and
 * a new one gets the same volume with its files.
 */
class DevBoxScenarioTest {

    @TempDir
    Path dir;

    Kiln kiln;
    Path home;
    Path fleet;
    final List<Process> processes = new ArrayList<>();

    @BeforeEach
    void setUp() throws Exception {
        Prerequisites.requireCommand("ssh", "apt-get install openssh-client");
        Prerequisites.requireCommand("python3", "apt-get install python3");
        Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwxr-xr-x")); // the build user walks in
        home = Files.createDirectories(dir.resolve("home"));
        kiln = new Kiln(home);
        assertEquals(0, kiln.run("init").exitCode());
        fleet = home.resolve(".local/state/kiln/fleet");
    }

    @AfterEach
    void tearDown() throws Exception {
        for (Process p : processes) {
            p.destroy();
            p.waitFor(10, TimeUnit.SECONDS);
        }
        Matcher m = Pattern.compile("\"id\": \"(local-[0-9a-f]+)\"").matcher(kiln.run("ls", "-o", "json").out());
        while (m.find()) {
            kiln.run("terminate", m.group(1), "--force");
        }
    }

    @Test
    void servicesAreForwardedByNameAndTheDataVolumeOutlivesTheBox() throws Exception {
        int notebook = FreePorts.loopbackPort();
        int repl = FreePorts.loopbackPort();
        Path boot = dir.resolve("devbox-boot.sh");
        // The boot script writes the nREPL stand-in into the services' work directory.
        Files.writeString(boot, """
                #!/bin/sh
                set -e
                mkdir -p notebook
                echo '<h1>notebook stand-in</h1>' > notebook/index.html
                cat > repl.py <<'PY'
                import socketserver, sys
                class Echo(socketserver.StreamRequestHandler):
                    def handle(self):
                        for line in self.rfile:
                            self.wfile.write(b"echo: " + line)
                            self.wfile.flush()
                socketserver.ThreadingTCPServer.allow_reuse_address = True
                socketserver.ThreadingTCPServer(("127.0.0.1", int(sys.argv[1])), Echo).serve_forever()
                PY
                """);
        Kiln.Run launch = kiln.run("launch", "--role", "dev", "--volume", "data:1", "--keep-volume", "data", "--ttl", "30m",
                "--boot-script", boot.toString(),
                "--service", "notebook:" + notebook + "=python3 -m http.server --bind 127.0.0.1 --directory notebook " + notebook,
                "--service", "nrepl:" + repl + "=python3 repl.py " + repl);
        assertEquals(0, launch.exitCode(), launch.toString());
        String a = LocalFleetCleanupTest.launched(launch);
        awaitRunning(a, "notebook");
        awaitRunning(a, "nrepl");

        // The notebook, forwarded by its service name to a local port of our choosing.
        int localNotebook = FreePorts.loopbackPort();
        Process web = forward("web", a, "notebook", Integer.toString(localNotebook));
        assertEquals("http://127.0.0.1:" + localNotebook + "/", firstLine(web, "web"));
        HttpResponse<String> page = HttpClient.newHttpClient().send(HttpRequest.newBuilder(
                        URI.create("http://127.0.0.1:" + localNotebook + "/index.html")).timeout(Duration.ofSeconds(30)).build(),
                HttpResponse.BodyHandlers.ofString());
        assertEquals(200, page.statusCode());
        assertEquals("<h1>notebook stand-in</h1>\n", page.body());
        web.destroy();
        assertTrue(web.waitFor(60, TimeUnit.SECONDS));
        assertEquals(0, web.exitValue(), Files.readString(dir.resolve("web.err")));

        // The nREPL stand-in: lines there and back through the forward.
        Process replForward = forward("repl", a, "nrepl");
        String address = firstLine(replForward, "repl");
        int localRepl = Integer.parseInt(address.substring(address.lastIndexOf(':') + 1).replace("/", ""));
        try (Socket s = new Socket("127.0.0.1", localRepl)) {
            s.setSoTimeout(60_000);
            BufferedReader in = new BufferedReader(new InputStreamReader(s.getInputStream(), StandardCharsets.UTF_8));
            PrintWriter out = new PrintWriter(s.getOutputStream(), true, StandardCharsets.UTF_8);
            out.println("(+ 1 2)");
            assertEquals("echo: (+ 1 2)", in.readLine());
        }
        replForward.destroy();
        assertTrue(replForward.waitFor(60, TimeUnit.SECONDS));

        // A port that is neither a service's nor listed stays refused.
        Kiln.Run refused = kiln.run("forward", a, "9");
        assertEquals(5, refused.exitCode(), refused.toString());

        // Work saved in /data outlives the box.
        String data = LocalFleetCleanupTest.volumeOf(fleet, a, "data");
        Files.writeString(fleet.resolve("instances/" + a + "/mnt/data/notes.clj"), "(def kept true)\n");
        Kiln.Run term = kiln.run("terminate", a);
        assertEquals(0, term.exitCode(), term.toString());
        assertTrue(term.err().contains("kiln: " + data + " (data) is kept; attach it again with: kiln launch --role dev --volume data:"
                + data), term.err());
        String b = LocalFleetCleanupTest.launched(kiln.run("launch", "--role", "dev", "--volume", "data:" + data, "--ttl", "30m"));
        assertEquals("(def kept true)\n", Files.readString(fleet.resolve("instances/" + b + "/mnt/data/notes.clj")));
    }

    private void awaitRunning(String id, String service) throws Exception {
        String last = "";
        for (int i = 0; i < 600; i++) {
            Kiln.Run status = kiln.run("status", "--agent", id);
            last = status.out();
            if (last.lines().anyMatch(l -> l.startsWith("service " + service) && l.contains("running"))) {
                return;
            }
            Thread.sleep(200);
        }
        throw new AssertionError(service + " never ran: " + last);
    }

    /** {@code bin/kiln forward ARGS} in the same Kiln home, stopped after the test. */
    private Process forward(String name, String... args) throws IOException {
        Process p = KilnForward.start(dir, home, name, args);
        processes.add(p);
        return p;
    }

    private String firstLine(Process p, String name) throws Exception {
        return KilnForward.firstLine(p, dir, name);
    }
}
