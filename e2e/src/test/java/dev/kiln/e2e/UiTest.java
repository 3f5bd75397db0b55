package dev.kiln.e2e;

import com.sun.net.httpserver.HttpServer;
import dev.kiln.testkit.FreePorts;
import dev.kiln.testkit.Prerequisites;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.openqa.selenium.By;
import org.openqa.selenium.Dimension;
import org.openqa.selenium.JavascriptExecutor;
import org.openqa.selenium.OutputType;
import org.openqa.selenium.StaleElementReferenceException;
import org.openqa.selenium.WebDriver;
import org.openqa.selenium.WebElement;
import org.openqa.selenium.chrome.ChromeDriver;
import org.openqa.selenium.chrome.ChromeDriverService;
import org.openqa.selenium.chrome.ChromeOptions;
import org.openqa.selenium.support.ui.ExpectedConditions;
import org.openqa.selenium.support.ui.WebDriverWait;

import java.net.InetSocketAddress;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.time.Instant;
import java.util.Properties;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * `kiln ui` in a real browser: Debian's chromium, headless, driven through chromium-driver with
 * Selenium, against real local agents. What a user does on the page (launch from the form, extend,
 * follow a build's log, stop, stop all) and what the page refuses (no token: 401; a cross-site
 * POST: 403, audited). The services' link column is not asserted: the agents of this tree do not
 * run services yet (issue 25).
 *
 * <p>With {@code -Dkiln.ui.screenshot=PATH} it also saves the dashboard with a few instances as a
 * PNG (docs/img/ui.png is made that way; docs/ui.md says how).
 */
class UiTest {

    private static final Duration WAIT = Duration.ofSeconds(120);

    @TempDir
    Path dir;

    Kiln kiln;
    int webPort;
    static final Path CLI_JAR = RepoScript.ROOT.resolve("controller/target/kiln.jar");

    Process ui;
    WebDriver browser;
    HttpServer elsewhere;

    @BeforeEach
    void setUp() throws Exception {
        Path chromium = Prerequisites.requireCommand("chromium", "apt-get install chromium");
        Path driver = Prerequisites.requireCommand("chromedriver", "apt-get install chromium-driver");
        Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwxr-xr-x")); // the build user walks in
        kiln = new Kiln(dir.resolve("home")).env("KILN_LOCAL_VOLUMES", "dirs");
        assertEquals(0, kiln.run("init").exitCode());
        webPort = FreePorts.loopbackPort();
        Files.writeString(kiln.configDir().resolve("config.yml"), """
                max-instances: 3
                templates:
                  preview:
                    ttl: 1h
                    volume: [data:1]
                    label: {pr: "", branch: main}
                    services: ["web:%d=echo preview-$KILN_LABEL_BRANCH > index.html && exec python3 -m http.server --bind 127.0.0.1 %d"]
                """.formatted(webPort, webPort));
        // The real kiln.jar in a process of its own, as a user runs it: only `kiln ui` loads the
        // HTTP server's beans (Main.UI_ONLY_PACKAGES), which an in-process run would not show.
        ProcessBuilder pb = new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-XX:TieredStopAtLevel=1", "-jar", CLI_JAR.toString(), "ui", "--port", "0", "--no-browser")
                .redirectOutput(dir.resolve("ui.out").toFile()).redirectError(dir.resolve("ui.err").toFile());
        pb.environment().putAll(kiln.environment());
        pb.environment().put("HOME", dir.resolve("home").toString());
        ui = pb.start();

        ChromeOptions options = new ChromeOptions();
        options.setBinary(chromium.toFile());
        // --no-sandbox: the tests run as root, where chromium's sandbox refuses to start.
        options.addArguments("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--no-first-run", "--disable-extensions", "--user-data-dir=" + dir.resolve("chromium"));
        // The driver named outright: Selenium Manager is never asked to find or download one.
        ChromeDriverService service = new ChromeDriverService.Builder().usingDriverExecutable(driver.toFile())
                .usingAnyFreePort().build();
        browser = new ChromeDriver(service, options);
        browser.manage().window().setSize(new Dimension(1400, 900));
    }

    @AfterEach
    void tearDown() throws Exception {
        if (browser != null) {
            browser.quit();
        }
        if (elsewhere != null) {
            elsewhere.stop(0);
        }
        if (ui != null) {
            ui.destroy(); // SIGTERM, as Ctrl-C ends it
            ui.waitFor();
        }
        Matcher m = Pattern.compile("\"id\": \"(local-[0-9a-f]+)\"").matcher(kiln.run("ls", "-o", "json").out());
        while (m.find()) {
            kiln.run("terminate", m.group(1), "--force");
        }
    }

    /** The URL `kiln ui` printed on stdout. */
    String url() throws Exception {
        Instant giveUp = Instant.now().plus(WAIT);
        while (Instant.now().isBefore(giveUp)) {
            Matcher m = Pattern.compile("http://127\\.0\\.0\\.1:\\d+/\\?token=[A-Za-z0-9_-]+").matcher(Files.readString(dir.resolve("ui.out")));
            if (m.find()) {
                return m.group();
            }
            assertTrue(ui.isAlive(), "kiln ui ended: " + uiErr());
            Thread.sleep(100);
        }
        throw new AssertionError("kiln ui printed no URL: " + uiErr());
    }

    WebDriverWait waiting() {
        return new WebDriverWait(browser, WAIT);
    }

    /**
     * Clicks what {@code by} finds, finding it again if the table's refresh replaced it between
     * the look-up and the click.
     */
    void click(By by) {
        waiting().ignoring(StaleElementReferenceException.class).until(d -> {
            d.findElement(by).click();
            return true;
        });
    }

    /** The text of what {@code by} finds, read again if a refresh replaced it meanwhile. */
    String text(By by) {
        return waiting().ignoring(StaleElementReferenceException.class).until(d -> d.findElement(by).getText());
    }

    /** An attribute of what {@code by} finds, read again if a refresh replaced it meanwhile. */
    String attribute(By by, String name) {
        return waiting().ignoring(StaleElementReferenceException.class).until(d -> d.findElement(by).getAttribute(name));
    }

    WebElement row(String id) {
        return waiting().until(ExpectedConditions.presenceOfElementLocated(By.id("row-" + id)));
    }

    String uiErr() throws java.io.IOException {
        return Files.readString(dir.resolve("ui.err"));
    }

    String launched(Kiln.Run run) {
        assertEquals(0, run.exitCode(), run.toString());
        return run.out().lines().skip(1).findFirst().orElseThrow().split("\\s+")[0];
    }

    @Test
    void launchExtendFollowAndStopFromTheBrowserAndRefuseWhatComesFromElsewhere() throws Exception {
        String url = url();
        String base = url.substring(0, url.indexOf("/?token="));

        // Without the token: 401, for the browser and for anything else.
        browser.get(base + "/");
        assertTrue(browser.findElement(By.tagName("body")).getText().startsWith("401: this dashboard needs its token"),
                browser.getPageSource());
        HttpResponse<String> bare = HttpClient.newHttpClient().send(HttpRequest.newBuilder(URI.create(base + "/fleet")).build(),
                HttpResponse.BodyHandlers.ofString());
        assertEquals(401, bare.statusCode(), bare.body());

        // The token's URL sets the cookie and leaves the token out of the address bar.
        browser.get(url);
        assertEquals(base + "/", browser.getCurrentUrl());
        waiting().until(ExpectedConditions.textToBe(By.cssSelector("#fleet-rows td"), "No instances are running."));

        // Launch from the form: the template's declared labels are its fields.
        new org.openqa.selenium.support.ui.Select(browser.findElement(By.id("launch-template"))).selectByValue("preview");
        WebElement pr = browser.findElement(By.id("label-preview-pr"));
        pr.sendKeys("3012");
        WebElement branch = browser.findElement(By.id("label-preview-branch"));
        assertEquals("main", branch.getAttribute("value"), "the template's value is the field's default");
        branch.clear();
        branch.sendKeys("fix-login");
        browser.findElement(By.id("launch-submit")).click();
        waiting().until(ExpectedConditions.textMatches(By.id("message"), Pattern.compile("(?s).*local-[0-9a-f]+\\s+preview\\s+running.*")));
        Matcher launchedId = Pattern.compile("local-[0-9a-f]+").matcher(browser.findElement(By.id("message")).getText());
        assertTrue(launchedId.find());
        String a = launchedId.group();
        row(a);
        String rowA = text(By.id("row-" + a));
        assertTrue(rowA.contains("branch=fix-login") && rowA.contains("pr=3012"), rowA);
        assertTrue(uiErr().contains(" launch preview {pr=3012, branch=fix-login}: ok"), uiErr());

        // Its service's link appears once the service runs, and leads to the preview.
        By web = By.cssSelector("#row-" + a + " .service a");
        waiting().ignoring(StaleElementReferenceException.class).until(d -> d.findElement(By.id("row-" + a)).getText().contains("web running"));
        String link = attribute(web, "href");
        assertEquals("http://127.0.0.1:" + webPort + "/", link);
        HttpResponse<String> preview = HttpClient.newHttpClient().send(HttpRequest.newBuilder(URI.create(link + "index.html"))
                .timeout(Duration.ofSeconds(30)).build(), HttpResponse.BodyHandlers.ofString());
        assertEquals("preview-fix-login\n", preview.body());

        // Labels are user input: shown as text, never run.
        int otherPort = FreePorts.loopbackPort(); // the template's port is the first preview's on this one machine
        String b = launched(kiln.run("launch", "--role", "preview", "--label", "pr=3020", "--label", "branch=dark-mode",
                "--service", "web:" + otherPort + "=exec python3 -m http.server --bind 127.0.0.1 " + otherPort));
        String hostile = launched(kiln.run("launch", "--ttl", "30m", "--label", "title=<script>window.pwned=1</script><b>x"));
        row(hostile);
        String rowX = text(By.id("row-" + hostile));
        assertTrue(rowX.contains("title=<script>window.pwned=1</script><b>x"), rowX);
        assertEquals(0, browser.findElements(By.cssSelector("#fleet-rows script, #fleet-rows b")).size());
        assertNull(((JavascriptExecutor) browser).executeScript("return window.pwned;"));

        // At the cap, the form's launch is refused with the CLI's message.
        click(By.id("launch-submit"));
        waiting().until(ExpectedConditions.textMatches(By.id("message"), Pattern.compile("(?s).*the fleet cap is 3 and 3 managed instances.*")));
        assertEquals("error", browser.findElement(By.id("message")).getAttribute("class"));

        // Stop one row (after the confirmation): its row goes.
        click(By.id("stop-" + hostile));
        browser.switchTo().alert().accept();
        waiting().until(ExpectedConditions.invisibilityOfElementLocated(By.id("row-" + hostile)));
        assertTrue(uiErr().contains(" stop " + hostile + ": ok"), uiErr());

        String c = launched(kiln.run("launch", "--ttl", "30m", "--label", "collection=vibes"));
        row(c);

        // Follow a build's log live: its first line shows while the build still waits for its second.
        Path job = dataVolume(a).resolve("job");
        Files.createDirectories(job);
        Files.setPosixFilePermissions(job, PosixFilePermissions.fromString("rwxrwxrwx"));
        Kiln.Run started = kiln.run("build", "--agent", a, "--detach", "job", "--", "sh", "-c",
                "echo first line; while [ ! -e go ]; do sleep 0.1; done; echo second line");
        assertEquals(0, started.exitCode(), started.toString());
        String build = started.out().strip();
        row(a);
        waiting().until(ExpectedConditions.presenceOfElementLocated(By.id("log-" + a + "-" + build)));
        click(By.id("log-" + a + "-" + build));
        waiting().until(ExpectedConditions.textToBePresentInElementLocated(By.id("log-text"), "first line"));
        assertFalse(browser.findElement(By.id("log-text")).getText().contains("second line"));
        screenshot();
        Files.writeString(job.resolve("go"), "");
        waiting().until(ExpectedConditions.textToBePresentInElementLocated(By.id("log-text"), "second line"));
        String log = browser.findElement(By.id("log-text")).getText();
        assertTrue(log.indexOf("first line") < log.indexOf("second line"), log);

        // Extend +1h: the deadline moves an hour later.
        By deadline = By.cssSelector("#row-" + b + " time.deadline");
        Instant before = Instant.parse(attribute(deadline, "datetime"));
        click(By.id("extend-" + b));
        waiting().until(d -> !before.toString().equals(attribute(deadline, "datetime")));
        Instant after = Instant.parse(attribute(deadline, "datetime"));
        assertEquals(Duration.ofHours(1), Duration.between(before, after));
        assertTrue(uiErr().contains(" extend " + b + " 1h: ok"), uiErr());

        // A POST from a page of another origin (another port of this host: same site, so the
        // browser even sends the cookie) is refused, and the refusal is audited.
        elsewhere = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 0);
        elsewhere.createContext("/", exchange -> {
            byte[] page = ("<!DOCTYPE html><html><body><form id=f method=post action=\"" + base + "/stop-all\"></form>"
                    + "<script>document.getElementById('f').submit()</script></body></html>").getBytes(StandardCharsets.UTF_8);
            exchange.getResponseHeaders().set("Content-Type", "text/html");
            exchange.sendResponseHeaders(200, page.length);
            exchange.getResponseBody().write(page);
            exchange.close();
        });
        elsewhere.start();
        String other = "http://127.0.0.1:" + elsewhere.getAddress().getPort();
        browser.get(other + "/");
        waiting().until(ExpectedConditions.textToBePresentInElementLocated(By.tagName("body"), "403: refused: cross-site request"));
        assertTrue(uiErr().contains("refused POST /stop-all (403): cross-site request (Origin " + other), uiErr());
        assertTrue(kiln.run("ls").out().contains(a), "nothing was stopped");

        // Stop all, after the confirmation: every row goes.
        browser.get(base + "/");
        row(a);
        browser.findElement(By.id("stop-all")).click();
        browser.switchTo().alert().accept();
        waiting().until(ExpectedConditions.textToBe(By.cssSelector("#fleet-rows td"), "No instances are running."));
        assertTrue(uiErr().contains(" stop all: ok"), uiErr());
    }

    /** The directory behind an instance's data volume (KILN_LOCAL_VOLUMES=dirs). */
    Path dataVolume(String id) throws Exception {
        Path fleet = kiln.stateDir().resolve("fleet");
        Properties p = new Properties();
        try (var r = Files.newBufferedReader(fleet.resolve("instances/" + id + "/instance.properties"))) {
            p.load(r);
        }
        for (int i = 0; p.getProperty("volume." + i + ".id") != null; i++) {
            if (p.getProperty("volume." + i + ".role").equals("data")) {
                return fleet.resolve("volumes/" + p.getProperty("volume." + i + ".id") + "/data");
            }
        }
        throw new AssertionError(id + " has no data volume: " + p);
    }

    /** Saves the page as a PNG where -Dkiln.ui.screenshot says (docs/img/ui.png is made this way). */
    void screenshot() throws Exception {
        String to = System.getProperty("kiln.ui.screenshot");
        if (to == null || to.isEmpty()) {
            return;
        }
        browser.manage().window().setSize(new Dimension(1400, 860));
        ((JavascriptExecutor) browser).executeScript("window.scrollTo(0, 0)");
        Files.write(Path.of(to), ((org.openqa.selenium.TakesScreenshot) browser).getScreenshotAs(OutputType.BYTES));
        browser.manage().window().setSize(new Dimension(1400, 900));
    }
}
