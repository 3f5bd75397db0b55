package dev.kiln.controller.ui;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.SecureRandom;
import java.util.Base64;
import java.util.Locale;

/**
 * Who may use the dashboard, decided per request: the holder of this run's token (from the URL
 * `kiln ui` prints, kept in an HttpOnly, SameSite=Strict cookie), and for anything that changes
 * state, a request from the dashboard's own page (same origin, and carrying the page's CSRF token).
 */
final class UiAccess {

    /** The cookie that carries the token. */
    static final String COOKIE = "kiln-ui";

    /** The header the page's script sends the CSRF token in. */
    static final String CSRF_HEADER = "X-Kiln-CSRF";

    /** What to do with a request. */
    enum Verdict {
        /** Serve it. */
        ALLOW,
        /** The URL's token is right: set the cookie and send the browser to the page without it. */
        SET_COOKIE,
        /** No (right) token: 401. */
        UNAUTHORIZED,
        /** A state change from elsewhere, or without the CSRF token: 403. */
        FORBIDDEN
    }

    /** A verdict and, for a refusal, why (for the audit line on stderr). */
    record Decision(Verdict verdict, String reason) {
    }

    private final String token;
    private final String csrf;

    UiAccess(String token, String csrf) {
        this.token = token;
        this.csrf = csrf;
    }

    /** New random tokens for one run of `kiln ui`. */
    static UiAccess random() {
        return new UiAccess(randomToken(), randomToken());
    }

    private static String randomToken() {
        byte[] b = new byte[24];
        new SecureRandom().nextBytes(b);
        return Base64.getUrlEncoder().withoutPadding().encodeToString(b);
    }

    String token() {
        return token;
    }

    String csrf() {
        return csrf;
    }

    /**
     * Decides one request.
     *
     * @param method     the HTTP method
     * @param tokenParam the {@code token} query parameter, or null
     * @param cookie     the {@link #COOKIE} cookie's value, or null
     * @param host       the Host header, or null
     * @param origin     the Origin header, or null
     * @param referer    the Referer header, or null
     * @param csrfHeader the {@link #CSRF_HEADER} header, or null
     */
    Decision decide(String method, String tokenParam, String cookie, String host, String origin, String referer, String csrfHeader) {
        boolean safe = method.equals("GET") || method.equals("HEAD");
        if (tokenParam != null) {
            if (!same(tokenParam, token)) {
                return new Decision(Verdict.UNAUTHORIZED, "wrong token in the URL");
            }
            return safe ? new Decision(Verdict.SET_COOKIE, null) : new Decision(Verdict.FORBIDDEN, "a token in the URL of a " + method);
        }
        if (!safe) {
            String self = host == null ? null : "http://" + host.toLowerCase(Locale.ROOT);
            if (origin != null && !origin.equals("null")) {
                if (!origin.toLowerCase(Locale.ROOT).equals(self)) {
                    return new Decision(Verdict.FORBIDDEN, "cross-site request (Origin " + origin + ", this dashboard is " + self + ")");
                }
            } else if (referer != null) {
                if (self == null || !referer.toLowerCase(Locale.ROOT).startsWith(self + "/")) {
                    return new Decision(Verdict.FORBIDDEN, "cross-site request (Referer " + referer + ", this dashboard is " + self + ")");
                }
            } else {
                return new Decision(Verdict.FORBIDDEN, "no Origin or Referer header: cannot tell where the request comes from");
            }
        }
        if (cookie == null || !same(cookie, token)) {
            return new Decision(Verdict.UNAUTHORIZED, cookie == null ? "no token" : "wrong token");
        }
        if (!safe && (csrfHeader == null || !same(csrfHeader, csrf))) {
            return new Decision(Verdict.FORBIDDEN, "missing or wrong CSRF token");
        }
        return new Decision(Verdict.ALLOW, null);
    }

    /** Compares in time independent of where the strings differ. */
    private static boolean same(String a, String b) {
        return MessageDigest.isEqual(a.getBytes(StandardCharsets.UTF_8), b.getBytes(StandardCharsets.UTF_8));
    }
}
