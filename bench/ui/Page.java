package dev.kiln.controller.ui;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;

import java.io.IOException;
import java.io.InputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.TimeUnit;

/**
 * The dashboard in Debian's chromium, headless: how long after navigation starts the fleet table
 * shows all N instances with their statuses. A loopback HTTP server serves exactly what `kiln ui`
 * serves for the page (Html.page, ui.js, ui.css) and, for /fleet, the rows of N instances whose
 * statuses have arrived (the same rows as Render.java), so the fan-out to the agents is not part
 * of it (ls-fanout measures that). An observer added to the page records performance.now()
 * (milliseconds since navigation start) when the table holds N rows with an agent status, and
 * again at the next animation frame (drawn), and posts both back with where the time went: the
 * page's request start, response start and end, DOMContentLoaded's end, and when the /fleet
 * request started and ended. Each run is a fresh browser (its own profile) that first loads a
 * blank page and then navigates to the dashboard; that second navigation is timed.
 *
 * <p>Usage: Page CHROMIUM N RUNS WORKDIR; prints "dom frame request response_start response_end
 * dcl fleet_start fleet_end" (ms) per run, one line each.
 */
public final class Page {

    /** Added at the end of the page: watches the table, reports once, then stays out of the way. */
    static String observer(int n) {
        return "<script>(function(){var sent=false;function check(){if(sent)return;"
                + "var ok=document.querySelectorAll('#fleet-rows td.agent-ok').length;if(ok<" + n + ")return;"
                + "sent=true;var dom=performance.now();requestAnimationFrame(function(){var frame=performance.now();"
                + "var nav=performance.getEntriesByType('navigation')[0];"
                + "var f=performance.getEntriesByName(location.origin+'/fleet')[0]||{};"
                + "var t=[dom,frame,nav.requestStart,nav.responseStart,nav.responseEnd,nav.domContentLoadedEventEnd,f.startTime,f.responseEnd]"
                + ".map(function(v){return (v||0).toFixed(1);});"
                + "fetch('/__done',{method:'POST',body:t.join(' ')});});}"
                + "new MutationObserver(check).observe(document.documentElement,{childList:true,subtree:true});check();})();</script>";
    }

    /**
     * Where the browser starts: a blank page that then opens the dashboard, so the timed navigation
     * is one in a browser that is already up, as a user's is (a browser's own start is not timed).
     */
    static final byte[] START = "<!DOCTYPE html><title>start</title><script>addEventListener('load',function(){setTimeout(function(){location.href='/';},500);});</script>"
            .getBytes(StandardCharsets.UTF_8);

    public static void main(String[] args) throws Exception {
        String chromium = args[0];
        int n = Integer.parseInt(args[1]);
        int runs = Integer.parseInt(args[2]);
        Path work = Path.of(args[3]);
        Instant now = Instant.now();
        String rows = Html.rows(Render.rows(n, now), now);
        String page = Html.page("bench", "local", Map.of()).replace("</body>", observer(n) + "</body>");
        BlockingQueue<String> done = new ArrayBlockingQueue<>(16);
        HttpServer server = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 0);
        server.createContext("/", x -> {
            String path = x.getRequestURI().getPath();
            switch (path) {
                case "/" -> send(x, 200, "text/html;charset=utf-8", page.getBytes(StandardCharsets.UTF_8));
                case "/start" -> send(x, 200, "text/html;charset=utf-8", START);
                case "/fleet" -> send(x, 200, "text/html;charset=utf-8", rows.getBytes(StandardCharsets.UTF_8));
                case "/snapshots" -> send(x, 200, "text/html;charset=utf-8", Html.snapshots(List.of(), now).getBytes(StandardCharsets.UTF_8));
                case "/static/ui.js" -> send(x, 200, "text/javascript;charset=utf-8", resource("ui.js"));
                case "/static/ui.css" -> send(x, 200, "text/css;charset=utf-8", resource("ui.css"));
                case "/__done" -> {
                    done.offer(new String(x.getRequestBody().readAllBytes(), StandardCharsets.UTF_8));
                    send(x, 204, "text/plain", new byte[0]);
                }
                default -> send(x, 404, "text/plain", new byte[0]);
            }
        });
        server.start();
        String url = "http://127.0.0.1:" + server.getAddress().getPort() + "/start";
        try {
            for (int r = 0; r < runs; r++) {
                Path profile = Files.createDirectories(work.resolve("chromium-" + r));
                // --no-sandbox: as root chromium's sandbox refuses to start (as in UiTest).
                Process p = new ProcessBuilder(chromium, "--headless=new", "--no-sandbox", "--disable-gpu",
                        "--disable-dev-shm-usage", "--no-first-run", "--disable-extensions", "--window-size=1400,900",
                        "--user-data-dir=" + profile, url)
                        .redirectErrorStream(true).redirectOutput(work.resolve("chromium-" + r + ".log").toFile()).start();
                try {
                    String got = done.poll(120, TimeUnit.SECONDS);
                    if (got == null) {
                        throw new IllegalStateException("chromium did not show " + n + " rows within 120 s; see "
                                + work.resolve("chromium-" + r + ".log"));
                    }
                    System.out.println(got);
                } finally {
                    p.descendants().forEach(ProcessHandle::destroy);
                    p.destroy();
                    if (!p.waitFor(20, TimeUnit.SECONDS)) {
                        p.descendants().forEach(ProcessHandle::destroyForcibly);
                        p.destroyForcibly().waitFor();
                    }
                }
            }
        } finally {
            server.stop(0);
        }
    }

    private static byte[] resource(String name) throws IOException {
        try (InputStream in = UiController.class.getResourceAsStream(name)) {
            return in.readAllBytes();
        }
    }

    private static void send(HttpExchange x, int status, String type, byte[] body) throws IOException {
        x.getResponseHeaders().set("Content-Type", type);
        x.sendResponseHeaders(status, body.length == 0 ? -1 : body.length);
        if (body.length > 0) {
            x.getResponseBody().write(body);
        }
        x.close();
    }
}
