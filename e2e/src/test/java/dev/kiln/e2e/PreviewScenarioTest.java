package dev.kiln.e2e;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import dev.kiln.testkit.FreePorts;
import dev.kiln.testkit.Prerequisites;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The pull-request previewer's job on the local provider, as docs/previews.md tells it: a
 * {@code preview} template whose boot script checks out the branch its label names from a real
 * git repository and builds a tiny site, served by {@code python3 -m http.server}; two previews
 * under a cap of two, a third refused naming them; each link (from {@code kiln ls}, fetched with
 * the real curl) shows its own branch; one is extended, the other ends on its lease, its port
 * closes and it leaves {@code kiln ls}. Local instances share this machine's network, so each
 * preview gets its own port with {@code --service} (on EC2 the template's one port serves all).
 */
class PreviewScenarioTest {

    @TempDir
    Path dir;

    Kiln kiln;
    Path repo;
    /** `git daemon` serving the test's repository on loopback, as a team's git server would. */
    Process gitDaemon;
    final List<String> launched = new ArrayList<>();

    @BeforeEach
    void setUp() throws Exception {
        Prerequisites.requireCommand("git", "apt-get install git");
        Prerequisites.requireCommand("curl", "apt-get install curl");
        Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwxr-xr-x")); // the build user clones from here
        repo = makeRepository(dir.resolve("shop"));
        int gitPort = FreePorts.loopbackPort();
        gitDaemon = new ProcessBuilder("git", "daemon", "--reuseaddr", "--export-all", "--listen=127.0.0.1", "--port=" + gitPort,
                "--base-path=" + dir, dir.toString()).redirectErrorStream(true)
                .redirectOutput(dir.resolve("git-daemon.log").toFile()).start();
        await("git daemon to listen", () -> accepts(gitPort));
        kiln = new Kiln(dir.resolve("home"));
        assertEquals(0, kiln.run("init").exitCode());
        Files.writeString(kiln.configDir().resolve("preview-boot.sh"), """
                #!/bin/sh
                # Check out the branch this preview is for and build the site into ./site.
                set -eu
                rm -rf src site
                git clone --quiet --branch "$KILN_LABEL_BRANCH" git://127.0.0.1:%d/shop src
                mkdir site
                cat src/header.html src/page.html > site/index.html
                echo "built $KILN_LABEL_BRANCH for PR $KILN_LABEL_PR"
                """.formatted(gitPort));
        Files.writeString(kiln.configDir().resolve("config.yml"), """
                templates:
                  preview:
                    ttl: 30m
                    max-lifetime: 2h
                    label: {app: shop}
                    boot-script: preview-boot.sh
                    services:
                      - web:8000=python3 -m http.server 8000 --bind 127.0.0.1 --directory site
                """);
    }

    @AfterEach
    void tearDown() {
        launched.forEach(id -> kiln.run("terminate", id, "--force"));
        if (gitDaemon != null) {
            gitDaemon.descendants().forEach(ProcessHandle::destroy);
            gitDaemon.destroy();
        }
    }

    /** A git repository with two branches whose pages differ: main, and feature-cart. */
    static Path makeRepository(Path repo) throws Exception {
        Files.createDirectories(repo);
        git(repo, "init", "--quiet", "--initial-branch=main");
        Files.writeString(repo.resolve("header.html"), "<title>shop</title>\n");
        Files.writeString(repo.resolve("page.html"), "<h1>The shop, as on main</h1>\n");
        git(repo, "add", ".");
        git(repo, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "--quiet", "-m", "shop");
        git(repo, "checkout", "--quiet", "-b", "feature-cart");
        Files.writeString(repo.resolve("page.html"), "<h1>The shop, with the new cart</h1>\n");
        git(repo, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "--quiet", "-am", "cart");
        git(repo, "checkout", "--quiet", "main");
        return repo;
    }

    static void git(Path repo, String... args) throws Exception {
        List<String> cmd = new ArrayList<>(List.of("git", "-C", repo.toString()));
        cmd.addAll(List.of(args));
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(60, TimeUnit.SECONDS) && p.exitValue() == 0, cmd + ": " + out);
    }

    String launch(String... args) {
        List<String> all = new ArrayList<>(List.of("launch", "--role", "preview"));
        all.addAll(List.of(args));
        Kiln.Run run = kiln.run(all.toArray(String[]::new));
        assertEquals(0, run.exitCode(), run.toString());
        String id = MotoWorld.launchedId(run);
        launched.add(id);
        return id;
    }

    /** The instance's object in `kiln ls -o json`, or null when it is not listed. */
    JsonObject listed(String id) {
        Kiln.Run ls = kiln.run("ls", "-o", "json");
        assertEquals(0, ls.exitCode(), ls.toString());
        for (JsonElement e : JsonParser.parseString(ls.out()).getAsJsonArray()) {
            if (e.getAsJsonObject().get("id").getAsString().equals(id)) {
                return e.getAsJsonObject();
            }
        }
        return null;
    }

    /** The page at {@code url}, fetched with curl, or null when nothing answers. */
    static String curl(String url) throws Exception {
        Process p = new ProcessBuilder("curl", "-sS", "--fail", "--max-time", "10", url).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        return p.waitFor(30, TimeUnit.SECONDS) && p.exitValue() == 0 ? out : null;
    }

    /** Waits (bounded) until {@code done} holds; the bound only stops a hung test, nothing is timed. */
    static void await(String what, BooleanSupplier done) throws InterruptedException {
        await(() -> what, done);
    }

    /** {@link #await(String, BooleanSupplier)}, saying what it waited for as things are when it gives up. */
    static void await(java.util.function.Supplier<String> what, BooleanSupplier done) throws InterruptedException {
        long end = System.nanoTime() + Duration.ofMinutes(4).toNanos();
        while (!done.getAsBoolean()) {
            if (System.nanoTime() > end) {
                throw new AssertionError("still waiting for " + what.get());
            }
            Thread.sleep(250);
        }
    }

    static boolean accepts(int port) {
        try (Socket s = new Socket()) {
            s.connect(new InetSocketAddress("127.0.0.1", port), 2000);
            return true;
        } catch (IOException e) {
            return false;
        }
    }

    @Test
    void twoPreviewsUnderACapEachShowingItsBranchOneExtendedTheOtherEndingOnItsLease() throws Exception {
        int portA = FreePorts.loopbackPort();
        int portB = FreePorts.loopbackPort();
        String serve = "python3 -m http.server %d --bind 127.0.0.1 --directory site";
        String a = launch("--label", "pr=3012", "--label", "branch=main", "--max", "2",
                "--service", "web:" + portA + "=" + serve.formatted(portA));
        String b = launch("--label", "pr=3013", "--label", "branch=feature-cart", "--max", "2", "--ttl", "90s",
                "--service", "web:" + portB + "=" + serve.formatted(portB));

        Kiln.Run third = kiln.run("launch", "--role", "preview", "--label", "pr=3014", "--label", "branch=main", "--max", "2");
        assertEquals(5, third.exitCode(), third.toString());
        assertTrue(third.err().contains("the fleet cap is 2 and 2 managed instances are pending or running:"), third.err());
        assertTrue(third.err().contains(a + " preview running {app=shop, branch=main, pr=3012}"), third.err());
        assertTrue(third.err().contains(b + " preview running {app=shop, branch=feature-cart, pr=3013}"), third.err());

        // Each link, as kiln ls gives it, serves its own branch once its boot script has built it.
        String linkA = "http://127.0.0.1:" + portA + "/";
        String linkB = "http://127.0.0.1:" + portB + "/";
        for (String[] x : new String[][] {{a, linkA, "The shop, as on main"}, {b, linkB, "The shop, with the new cart"}}) {
            await(() -> x[0] + "'s service to run (in kiln ls: " + listed(x[0]) + ")", () -> {
                JsonArray links = listed(x[0]).getAsJsonArray("links");
                return links.size() == 1 && links.get(0).getAsJsonObject().get("state").getAsString().equals("running")
                        && links.get(0).getAsJsonObject().get("port_open").getAsBoolean();
            });
            JsonObject link = listed(x[0]).getAsJsonArray("links").get(0).getAsJsonObject();
            assertEquals("web", link.get("name").getAsString());
            assertEquals(x[1], link.get("url").getAsString());
            String page = curl(x[1]);
            assertTrue(page != null && page.contains(x[2]) && page.contains("<title>shop</title>"), x[1] + ": " + page);
        }
        JsonObject boot = listed(b).getAsJsonObject("boot");
        assertEquals("succeeded", boot.get("state").getAsString(), boot.toString());
        assertEquals(0, boot.get("exit_code").getAsInt(), boot.toString());
        Kiln.Run wide = kiln.run("ls", "-o", "wide");
        assertTrue(wide.out().matches("(?s).*" + a + "\\s.*web=" + Pattern.quote(linkA) + ".*"), wide.out());
        assertTrue(wide.out().matches("(?s).*" + b + "\\s.*web=" + Pattern.quote(linkB) + ".*"), wide.out());

        // The boot script's log, followed to its end; the service's, with curl's requests in it.
        Kiln.Run bootLog = kiln.run("logs", "-f", "--agent", b, "boot");
        assertEquals(0, bootLog.exitCode(), bootLog.toString());
        assertTrue(bootLog.out().contains("built feature-cart for PR 3013"), bootLog.toString());
        assertTrue(bootLog.err().contains("kiln: boot script succeeded (exit 0)"), bootLog.toString());
        Kiln.Run resumed = kiln.run("logs", "--agent", b, "boot", "--from", "6");
        assertEquals(bootLog.out().substring(6), resumed.out(), "the same log from byte 6");
        Kiln.Run serviceLog = kiln.run("logs", "--agent", a, "service:web");
        assertEquals(0, serviceLog.exitCode(), serviceLog.toString());
        assertTrue(serviceLog.out().contains("\"GET / HTTP/1.1\" 200"), serviceLog.toString());

        Kiln.Run status = kiln.run("status", "--agent", a);
        assertTrue(status.out().matches("(?s).*labels\\s+app=shop,branch=main,pr=3012\n.*"), status.out());
        assertTrue(status.out().matches("(?s).*boot-script\\s+succeeded \\(exit 0\\).*"), status.out());
        assertTrue(status.out().matches("(?s).*service web\\s+running, pid \\d+, 0 restarts, port " + portA + " open, "
                + Pattern.quote(linkA) + "\n.*"), status.out());

        // kiln open prints the link and hands it to $BROWSER.
        Path opened = dir.resolve("opened");
        Path browser = Files.writeString(dir.resolve("browser"), "#!/bin/sh\nprintf '%s\\n' \"$@\" > " + opened + "\n");
        Files.setPosixFilePermissions(browser, PosixFilePermissions.fromString("rwx------"));
        Kiln.Run open = kiln.env("BROWSER", browser.toString()).run("open", a);
        assertEquals(0, open.exitCode(), open.toString());
        assertEquals(linkA + "\n", open.out());
        assertEquals(linkA + "\n", Files.readString(opened));
        Kiln.Run noSuch = kiln.run("open", a, "api");
        assertEquals(6, noSuch.exitCode(), noSuch.toString());
        assertTrue(noSuch.err().contains(a + " has no service 'api' (its services: web)"), noSuch.err());

        Kiln.Run extend = kiln.run("extend", a, "30m");
        assertEquals(0, extend.exitCode(), extend.toString());

        // b's lease ends: the agent drains (its service stopped), and b leaves kiln ls.
        await(b + " to end on its lease", () -> listed(b) == null);
        assertFalse(accepts(portB), "b's service stopped with it: port " + portB + " is closed");
        assertFalse(kiln.run("ls").out().contains(b));
        String stillA = curl(linkA);
        assertTrue(stillA != null && stillA.contains("The shop, as on main"), "a runs on: " + stillA);
        Matcher remaining = Pattern.compile(a + "\\s+preview\\s+app=shop,branch=main,pr=3012\\s+running\\s+ready\\s+-\\s+(\\d+)m")
                .matcher(kiln.run("ls").out());
        assertTrue(remaining.find() && Integer.parseInt(remaining.group(1)) > 40, "a's lease was extended past 40m");
    }

    @Test
    void aFailingBootScriptLeavesItsServiceUnstartedAndSaysSoInLsAndStatus() throws Exception {
        Path failing = Files.writeString(dir.resolve("failing-boot.sh"), "#!/bin/sh\necho 'cannot build'\nexit 3\n");
        int port = FreePorts.loopbackPort();
        String id = launch("--label", "pr=1", "--label", "branch=nowhere", "--boot-script", failing.toString(),
                "--service", "web:" + port + "=python3 -m http.server " + port + " --bind 127.0.0.1",
                "--service", "admin:" + FreePorts.loopbackPort() + "/admin/");
        await("the boot script to fail", () -> {
            JsonObject o = listed(id);
            return o != null && !o.get("boot").isJsonNull() && o.getAsJsonObject("boot").get("state").getAsString().equals("failed");
        });
        assertEquals(3, listed(id).getAsJsonObject("boot").get("exit_code").getAsInt());
        assertTrue(kiln.run("ls").out().matches("(?s).*" + id + "\\s.*boot failed \\(exit 3\\).*"), kiln.run("ls").out());
        Kiln.Run status = kiln.run("status", "--agent", id);
        assertTrue(status.out().matches("(?s).*boot-script\\s+failed \\(exit 3\\).*"), status.out());
        assertTrue(status.out().matches("(?s).*service web\\s+(failed|waiting), 0 restarts, port " + port + " closed.*"), status.out());
        assertFalse(accepts(port), "the service never started");
        Kiln.Run log = kiln.run("logs", "-f", "--agent", id, "boot");
        assertEquals(3, log.exitCode(), log.toString());
        assertTrue(log.out().contains("cannot build\n"), log.toString());
        assertTrue(log.err().contains("kiln: boot script failed (exit 3)"), log.toString());

        // Two services: kiln open wants a name; a link that cannot answer is printed with a note why.
        Kiln.Run which = kiln.run("open", id);
        assertEquals(2, which.exitCode(), which.toString());
        assertTrue(which.err().contains(id + " has 2 services: web, admin; name one"), which.err());
        Kiln.Run open = kiln.run("open", id, "web");
        assertEquals(0, open.exitCode(), open.toString());
        assertEquals("http://127.0.0.1:" + port + "/\n", open.out());
        assertTrue(open.err().matches("(?s)kiln: web is (failed|waiting) and its port " + port + " is not open yet.*"), open.err());
    }
}
