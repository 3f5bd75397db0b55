package dev.kiln.controller.ui;

import io.micronaut.core.annotation.Nullable;
import io.micronaut.core.order.Ordered;
import io.micronaut.http.HttpHeaders;
import io.micronaut.http.HttpRequest;
import io.micronaut.http.HttpResponse;
import io.micronaut.http.HttpStatus;
import io.micronaut.http.MediaType;
import io.micronaut.http.MutableHttpResponse;
import io.micronaut.http.annotation.RequestFilter;
import io.micronaut.http.annotation.ResponseFilter;
import io.micronaut.http.annotation.ServerFilter;
import io.micronaut.http.cookie.Cookie;
import io.micronaut.http.cookie.SameSite;

import java.net.URI;
import java.util.ArrayList;
import java.util.List;

/**
 * Applies {@link UiAccess} to every request, and the page's security headers to every response.
 * It runs before Micronaut's own filters (its CORS filter refuses some cross-site requests too,
 * but without the audit line).
 */
@ServerFilter(ServerFilter.MATCH_ALL_PATTERN)
public class UiFilter implements Ordered {

    private final UiAccess access;
    private final UiAudit audit;

    UiFilter(UiAccess access, UiAudit audit) {
        this.access = access;
        this.audit = audit;
    }

    @Override
    public int getOrder() {
        return HIGHEST_PRECEDENCE;
    }

    @RequestFilter
    @Nullable
    public HttpResponse<?> check(HttpRequest<?> request) {
        HttpHeaders h = request.getHeaders();
        UiAccess.Decision d = access.decide(request.getMethodName(), request.getParameters().get("token"),
                cookies(h.getAll(HttpHeaders.COOKIE), access.cookie()),
                h.get(HttpHeaders.HOST), h.get(HttpHeaders.ORIGIN), h.get(HttpHeaders.REFERER), h.get(UiAccess.CSRF_HEADER));
        return switch (d.verdict()) {
            case ALLOW -> null;
            case SET_COOKIE -> HttpResponse.seeOther(URI.create("/")).cookie(Cookie.of(access.cookie(), access.session())
                    .httpOnly(true).sameSite(SameSite.Strict).path("/"));
            case MISDIRECTED -> {
                audit.refused(request, 421, d.reason());
                yield HttpResponse.status(HttpStatus.MISDIRECTED_REQUEST).contentType(MediaType.TEXT_PLAIN_TYPE)
                        .body("421: refused: " + d.reason() + "; open the URL that `kiln ui` printed\n");
            }
            case UNAUTHORIZED -> {
                audit.refused(request, 401, d.reason());
                yield HttpResponse.status(HttpStatus.UNAUTHORIZED).contentType(MediaType.TEXT_PLAIN_TYPE)
                        .body("401: this dashboard needs its token: open the URL that `kiln ui` printed (" + d.reason() + ")\n");
            }
            case FORBIDDEN -> {
                audit.refused(request, 403, d.reason());
                yield HttpResponse.status(HttpStatus.FORBIDDEN).contentType(MediaType.TEXT_PLAIN_TYPE)
                        .body("403: refused: " + d.reason() + "\n");
            }
        };
    }

    /**
     * Every value of the cookie {@code name} in the Cookie headers: a page of another port of the
     * same host can set a cookie of the same name, which the browser may send first.
     */
    static List<String> cookies(List<String> headers, String name) {
        List<String> values = new ArrayList<>();
        for (String header : headers) {
            for (String pair : header.split(";")) {
                int eq = pair.indexOf('=');
                if (eq > 0 && pair.substring(0, eq).trim().equals(name)) {
                    String v = pair.substring(eq + 1).trim();
                    values.add(v.length() >= 2 && v.startsWith("\"") && v.endsWith("\"") ? v.substring(1, v.length() - 1) : v);
                }
            }
        }
        return values;
    }

    /** No framing, no scripts or styles but the page's own, no caching, no referrer to service links. */
    @ResponseFilter
    public void headers(MutableHttpResponse<?> response) {
        response.header("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self';"
                        + " connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
                .header("X-Content-Type-Options", "nosniff")
                .header("X-Frame-Options", "DENY")
                .header("Referrer-Policy", "same-origin")
                .header("Cache-Control", "no-store");
    }
}
