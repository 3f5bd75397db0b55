package dev.kiln.controller.ui;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;

/** Who may use the dashboard: the token's holder, and for changes, the page itself. */
class UiAccessTest {

    final UiAccess access = new UiAccess("tok", "csrf");
    static final String HOST = "127.0.0.1:8421";
    static final String SELF = "http://127.0.0.1:8421";

    UiAccess.Verdict decide(String method, String tokenParam, String cookie, String origin, String referer, String csrf) {
        return access.decide(method, tokenParam, cookie, HOST, origin, referer, csrf).verdict();
    }

    @Test
    void theUrlsTokenSetsTheCookieAndAWrongOneIsUnauthorized() {
        assertEquals(UiAccess.Verdict.SET_COOKIE, decide("GET", "tok", null, null, null, null));
        assertEquals(UiAccess.Verdict.UNAUTHORIZED, decide("GET", "tok2", null, null, null, null));
        assertEquals(UiAccess.Verdict.FORBIDDEN, decide("POST", "tok", null, SELF, null, "csrf"));
    }

    @Test
    void everyRequestNeedsTheCookie() {
        assertEquals(UiAccess.Verdict.UNAUTHORIZED, decide("GET", null, null, null, null, null));
        assertEquals(UiAccess.Verdict.UNAUTHORIZED, decide("GET", null, "other", null, null, null));
        assertEquals(UiAccess.Verdict.UNAUTHORIZED, decide("POST", null, null, SELF, null, "csrf"));
        assertEquals(UiAccess.Verdict.ALLOW, decide("GET", null, "tok", null, null, null));
    }

    @Test
    void aChangeNeedsTheSameOriginAndTheCsrfToken() {
        assertEquals(UiAccess.Verdict.ALLOW, decide("POST", null, "tok", SELF, null, "csrf"));
        assertEquals(UiAccess.Verdict.ALLOW, decide("POST", null, "tok", null, SELF + "/", "csrf"));
        assertEquals(UiAccess.Verdict.FORBIDDEN, decide("POST", null, "tok", "http://127.0.0.1:9999", null, "csrf"));
        assertEquals(UiAccess.Verdict.FORBIDDEN, decide("POST", null, "tok", null, "http://127.0.0.1:84210/", "csrf"));
        assertEquals(UiAccess.Verdict.FORBIDDEN, decide("POST", null, "tok", null, null, "csrf"));
        assertEquals(UiAccess.Verdict.FORBIDDEN, decide("POST", null, "tok", SELF, null, null));
        assertEquals(UiAccess.Verdict.FORBIDDEN, decide("POST", null, "tok", SELF, null, "wrong"));
        UiAccess.Decision d = access.decide("POST", null, "tok", HOST, "http://evil.example", null, "csrf");
        assertEquals("cross-site request (Origin http://evil.example, this dashboard is " + SELF + ")", d.reason());
    }

    @Test
    void eachRunHasItsOwnTokens() {
        UiAccess a = UiAccess.random();
        UiAccess b = UiAccess.random();
        assertNotEquals(a.token(), b.token());
        assertNotEquals(a.token(), a.csrf());
    }
}
