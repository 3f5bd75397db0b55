package dev.kiln.controller.ui;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.SecureRandom;
import java.util.Base64;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;

/**
 * Who may use the dashboard, decided per request: only requests addressed to the dashboard's own
 * names (no DNS rebinding); the holder of this run's token (from the URL `kiln ui` prints),
 * exchanged once for a session secret kept in an HttpOnly, SameSite=Strict cookie; and for anything
 * that changes state, a request from the dashboard's own page (one of its origins, and carrying the
 * page's CSRF token).
 */
final class UiAccess {

    /** The header the page's script sends the CSRF token in. */
    static final String CSRF_HEADER = "X-Kiln-CSRF";

    /** What to do with a request. */
    enum Verdict {
        /** Serve it. */
        ALLOW,
        /** The URL's token is right: set the session cookie and send the browser to the page without it. */
        SET_COOKIE,
        /** No (right) token or session: 401. */
        UNAUTHORIZED,
        /** A state change from elsewhere, or without the CSRF token: 403. */
        FORBIDDEN,
        /** Addressed to a host name that is not this dashboard's (DNS rebinding): 421. */
        MISDIRECTED
    }

    /** A verdict and, for a refusal, why (for the audit line on stderr). */
    record Decision(Verdict verdict, String reason) {
    }

    private final String token;
    private final String session;
    private final String csrf;
    private final String bind;
    private volatile int port;
    private volatile Set<String> hosts = Set.of();

    /**
     * @param token   the secret in the printed URL
     * @param session the secret the session cookie carries once the token is exchanged
     * @param csrf    the page's CSRF token
     * @param bind    the address the dashboard listens on (an IP literal), or null for loopback
     */
    UiAccess(String token, String session, String csrf, String bind) {
        this.token = token;
        this.session = session;
        this.csrf = csrf;
        this.bind = bind;
    }

    /** New random secrets for one run of `kiln ui`, listening on {@code bind}. */
    static UiAccess random(String bind) {
        return new UiAccess(randomToken(), randomToken(), randomToken(), bind);
    }

    /**
     * The port the server listens on, once it does: the dashboard answers only to
     * 127.0.0.1, localhost, [::1] and the --bind address at that port (every request before is refused).
     */
    UiAccess listeningOn(int port) {
        Set<String> h = new LinkedHashSet<>();
        List<String> names = new java.util.ArrayList<>(List.of("127.0.0.1", "localhost", "[::1]"));
        if (bind != null && !bind.equals("0.0.0.0") && !bind.equals("::")) {
            names.add((bind.contains(":") ? "[" + bind + "]" : bind).toLowerCase(Locale.ROOT));
        }
        for (String name : names) {
            h.add(name + ":" + port);
            if (port == 80) {
                h.add(name); // a browser leaves the default port out of Host and Origin
            }
        }
        this.port = port;
        this.hosts = java.util.Collections.unmodifiableSet(h);
        return this;
    }

    private static String randomToken() {
        byte[] b = new byte[24];
        new SecureRandom().nextBytes(b);
        return Base64.getUrlEncoder().withoutPadding().encodeToString(b);
    }

    String token() {
        return token;
    }

    String session() {
        return session;
    }

    String csrf() {
        return csrf;
    }

    /**
     * The session cookie's name: one per port, since a browser sends 127.0.0.1's cookies to every
     * port of it and a page on another port could otherwise set one of the same name.
     */
    String cookie() {
        return "kiln-ui-" + port;
    }

    /** The Host values this dashboard answers to, e.g. {@code 127.0.0.1:8421}. */
    Set<String> hosts() {
        return hosts;
    }

    /**
     * Decides one request.
     *
     * @param method     the HTTP method
     * @param tokenParam the {@code token} query parameter, or null
     * @param cookies    every value of the {@link #cookie()} cookie the request carries
     * @param host       the Host header, or null
     * @param origin     the Origin header, or null
     * @param referer    the Referer header, or null
     * @param csrfHeader the {@link #CSRF_HEADER} header, or null
     */
    Decision decide(String method, String tokenParam, List<String> cookies, String host, String origin, String referer,
                    String csrfHeader) {
        Set<String> hosts = this.hosts;
        if (host == null || !hosts.contains(host.toLowerCase(Locale.ROOT))) {
            return new Decision(Verdict.MISDIRECTED, "Host " + (host == null ? "missing" : host)
                    + " is not this dashboard's (it answers to " + String.join(", ", hosts) + ")");
        }
        boolean safe = method.equals("GET") || method.equals("HEAD");
        if (tokenParam != null) {
            if (!same(tokenParam, token)) {
                return new Decision(Verdict.UNAUTHORIZED, "wrong token in the URL");
            }
            return safe ? new Decision(Verdict.SET_COOKIE, null) : new Decision(Verdict.FORBIDDEN, "a token in the URL of a " + method);
        }
        if (!safe) {
            if (origin != null && !origin.equals("null")) {
                String o = stripScheme(origin);
                if (o == null || !hosts.contains(o)) {
                    return new Decision(Verdict.FORBIDDEN, "cross-site request (Origin " + origin + ", this dashboard is "
                            + origins(hosts) + ")");
                }
            } else if (referer != null) {
                String r = stripScheme(referer);
                int slash = r == null ? -1 : r.indexOf('/');
                if (slash < 0 || !hosts.contains(r.substring(0, slash))) {
                    return new Decision(Verdict.FORBIDDEN, "cross-site request (Referer " + referer + ", this dashboard is "
                            + origins(hosts) + ")");
                }
            } else {
                return new Decision(Verdict.FORBIDDEN, "no Origin or Referer header: cannot tell where the request comes from");
            }
        }
        boolean any = false;
        for (String c : cookies) {
            any |= same(c, session); // every value compared: the time taken does not say which matched
        }
        if (!any) {
            return new Decision(Verdict.UNAUTHORIZED, cookies.isEmpty() ? "no token" : "wrong token");
        }
        if (!safe && (csrfHeader == null || !same(csrfHeader, csrf))) {
            return new Decision(Verdict.FORBIDDEN, "missing or wrong CSRF token");
        }
        return new Decision(Verdict.ALLOW, null);
    }

    private static String origins(Set<String> hosts) {
        return "http://" + String.join(" or http://", hosts);
    }

    /** {@code http://HOST...} lower-cased without its scheme, or null for another scheme. */
    private static String stripScheme(String url) {
        String u = url.toLowerCase(Locale.ROOT);
        return u.startsWith("http://") ? u.substring("http://".length()) : null;
    }

    /** Compares in time independent of where the strings differ. */
    private static boolean same(String a, String b) {
        return MessageDigest.isEqual(a.getBytes(StandardCharsets.UTF_8), b.getBytes(StandardCharsets.UTF_8));
    }
}
