package dev.kiln.controller.ui;

import com.google.gson.JsonObject;
import dev.kiln.controller.ExitCodes;
import dev.kiln.controller.KilnException;
import io.micronaut.http.HttpRequest;
import io.micronaut.http.HttpResponse;
import io.micronaut.http.HttpStatus;
import io.micronaut.http.MediaType;
import io.micronaut.http.annotation.Controller;
import io.micronaut.http.annotation.Get;
import io.micronaut.http.annotation.Post;
import io.micronaut.http.annotation.QueryValue;
import io.micronaut.scheduling.TaskExecutors;
import io.micronaut.scheduling.annotation.ExecuteOn;

import java.io.IOException;
import java.io.InputStream;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The dashboard's routes: the page and its two files, the fleet and snapshot tables as HTML
 * fragments, a log's next bytes, and the actions (POST, parameters in the query string). Every
 * route runs off the event loop: each one asks the provider or agents and waits.
 */
@Controller
@ExecuteOn(TaskExecutors.BLOCKING)
public class UiController {

    private static final MediaType HTML = MediaType.of("text/html;charset=utf-8");
    private static final MediaType JSON = MediaType.of("application/json;charset=utf-8");

    private final Dashboard dashboard;
    private final UiAccess access;
    private final UiAudit audit;

    UiController(Dashboard dashboard, UiAccess access, UiAudit audit) {
        this.dashboard = dashboard;
        this.access = access;
        this.audit = audit;
    }

    @Get("/")
    public HttpResponse<String> page() {
        String body;
        try {
            body = Html.page(access.csrf(), dashboard.provider(), dashboard.templates());
        } catch (KilnException e) {
            body = Html.page(access.csrf(), dashboard.provider(), Map.of()).replace("<main>",
                    "<main><p class=\"error\" role=\"alert\">" + Html.esc("kiln: " + e.getMessage()) + "</p>");
        }
        return HttpResponse.ok(body).contentType(HTML);
    }

    @Get("/static/{name}")
    public HttpResponse<byte[]> file(String name) throws IOException {
        MediaType type = switch (name) {
            case "ui.js" -> MediaType.of("text/javascript;charset=utf-8");
            case "ui.css" -> MediaType.of("text/css;charset=utf-8");
            default -> null;
        };
        if (type == null) {
            return HttpResponse.notFound();
        }
        try (InputStream in = UiController.class.getResourceAsStream(name)) {
            return HttpResponse.ok(in.readAllBytes()).contentType(type);
        }
    }

    @Get("/fleet")
    public HttpResponse<String> fleet() {
        try {
            return HttpResponse.ok(Html.rows(dashboard.rows(), dashboard.now())).contentType(HTML);
        } catch (KilnException e) {
            return HttpResponse.<String>status(HttpStatus.BAD_GATEWAY).body("<tr><td colspan=\"9\" class=\"error\">"
                    + Html.esc("kiln: " + e.getMessage()) + "</td></tr>").contentType(HTML);
        }
    }

    @Get("/snapshots")
    public HttpResponse<String> snapshots() {
        try {
            return HttpResponse.ok(Html.snapshots(dashboard.snapshots(), dashboard.now())).contentType(HTML);
        } catch (KilnException e) {
            return HttpResponse.<String>status(HttpStatus.BAD_GATEWAY).body("<tr><td colspan=\"5\" class=\"error\">"
                    + Html.esc("kiln: " + e.getMessage()) + "</td></tr>").contentType(HTML);
        }
    }

    /**
     * The bytes of a log from {@code from} that the agent has now, base64 in JSON, with the offset
     * to ask from next; {@code skipped} when the bytes at {@code from} were rotated away, and
     * {@code stop} with an error that asking again cannot cure.
     */
    @Get("/log")
    public HttpResponse<String> log(@QueryValue String instance, @QueryValue String log, @QueryValue(defaultValue = "0") long from) {
        JsonObject o = new JsonObject();
        try {
            Dashboard.LogPart part = dashboard.log(instance, log, from);
            byte[] data = part.data();
            if (part.from() > from) {
                o.addProperty("skipped", part.from() - from); // rotated away before the page read them
            }
            o.addProperty("offset", part.from() + data.length);
            o.addProperty("data", Base64.getEncoder().encodeToString(data));
            o.addProperty("more", data.length >= Dashboard.LOG_BYTES);
            return HttpResponse.ok(o.toString()).contentType(JSON);
        } catch (KilnException e) {
            o.addProperty("error", "kiln: " + e.getMessage());
            // Out of range with no offset to resume from: asking again would get the same answer.
            o.addProperty("stop", e.getCause() instanceof io.grpc.StatusRuntimeException s
                    && s.getStatus().getCode() == io.grpc.Status.Code.OUT_OF_RANGE);
            return HttpResponse.<String>status(status(e.exitCode())).body(o.toString()).contentType(JSON);
        }
    }

    @Post("/extend")
    public HttpResponse<String> extend(HttpRequest<?> request, @QueryValue String instance, @QueryValue String by) {
        return act(request, "extend " + instance + " " + by, () -> dashboard.extend(instance, by));
    }

    @Post("/stop")
    public HttpResponse<String> stop(HttpRequest<?> request, @QueryValue String instance) {
        return act(request, "stop " + instance, () -> dashboard.stop(instance));
    }

    @Post("/stop-all")
    public HttpResponse<String> stopAll(HttpRequest<?> request) {
        return act(request, "stop all", dashboard::stopAll);
    }

    /** Launches the template with the labels given as {@code label.KEY=VALUE} parameters. */
    @Post("/launch")
    public HttpResponse<String> launch(HttpRequest<?> request, @QueryValue String template,
                                       @QueryValue(defaultValue = "") String ttl) {
        Map<String, String> labels = new LinkedHashMap<>();
        request.getParameters().asMap().forEach((k, v) -> {
            if (k.startsWith("label.") && !v.isEmpty()) {
                labels.put(k.substring("label.".length()), v.get(0));
            }
        });
        return act(request, "launch " + template + " " + labels + (ttl.isEmpty() ? "" : " ttl " + ttl),
                () -> dashboard.launch(template, labels, ttl));
    }

    /** Runs an action, audits it, and answers {ok, message} with a status from the CLI's exit code. */
    private HttpResponse<String> act(HttpRequest<?> request, String what, java.util.function.Supplier<Dashboard.Outcome> action) {
        Dashboard.Outcome outcome;
        try {
            outcome = action.get();
        } catch (KilnException e) {
            outcome = new Dashboard.Outcome(e.exitCode(), "", "kiln: " + e.getMessage() + "\n");
        }
        audit.action(request, what, outcome.ok() ? "ok" : "exit " + outcome.exitCode());
        JsonObject o = new JsonObject();
        o.addProperty("ok", outcome.ok());
        o.addProperty("exit", outcome.exitCode());
        o.addProperty("message", message(outcome));
        return HttpResponse.<String>status(outcome.ok() ? HttpStatus.OK : status(outcome.exitCode())).body(o.toString()).contentType(JSON);
    }

    /** The command's output for the page: stdout on success, its `kiln:` lines on failure. */
    static String message(Dashboard.Outcome outcome) {
        if (outcome.ok()) {
            return (outcome.out().isBlank() ? outcome.err() : outcome.out()).strip();
        }
        List<String> lines = outcome.err().lines().filter(l -> l.startsWith("kiln: ") && !l.contains("KILN_DEBUG")).toList();
        return String.join("\n", lines.isEmpty() ? outcome.err().lines().toList() : lines).strip();
    }

    private static HttpStatus status(int exitCode) {
        return switch (exitCode) {
            case ExitCodes.USAGE -> HttpStatus.BAD_REQUEST;
            case ExitCodes.NOT_FOUND -> HttpStatus.NOT_FOUND;
            case ExitCodes.REFUSED, ExitCodes.EXISTS -> HttpStatus.CONFLICT;
            case ExitCodes.UNREACHABLE, ExitCodes.TIMEOUT -> HttpStatus.BAD_GATEWAY;
            case ExitCodes.CONFIG -> HttpStatus.SERVICE_UNAVAILABLE;
            default -> HttpStatus.INTERNAL_SERVER_ERROR;
        };
    }
}
