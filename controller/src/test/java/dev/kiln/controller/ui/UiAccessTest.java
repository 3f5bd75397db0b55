package dev.kiln.controller.ui;

import io.grpc.Status;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.OptionalLong;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;

/** Who may use the dashboard: requests to its own names, the token's holder, and for changes, the page itself. */
class UiAccessTest {

    final UiAccess access = new UiAccess("tok", "sess", "csrf", null).listeningOn(8421);
    static final String HOST = "127.0.0.1:8421";
    static final String SELF = "http://127.0.0.1:8421";

    UiAccess.Verdict decide(String method, String tokenParam, String cookie, String origin, String referer, String csrf) {
        return access.decide(method, tokenParam, cookie == null ? List.of() : List.of(cookie), HOST, origin, referer, csrf).verdict();
    }

    @Test
    void theUrlsTokenSetsTheCookieAndAWrongOneIsUnauthorized() {
        assertEquals(UiAccess.Verdict.SET_COOKIE, decide("GET", "tok", null, null, null, null));
        assertEquals(UiAccess.Verdict.UNAUTHORIZED, decide("GET", "tok2", null, null, null, null));
        assertEquals(UiAccess.Verdict.FORBIDDEN, decide("POST", "tok", null, SELF, null, "csrf"));
    }

    @Test
    void everyRequestNeedsTheSessionCookie() {
        assertEquals(UiAccess.Verdict.UNAUTHORIZED, decide("GET", null, null, null, null, null));
        assertEquals(UiAccess.Verdict.UNAUTHORIZED, decide("GET", null, "other", null, null, null));
        assertEquals(UiAccess.Verdict.UNAUTHORIZED, decide("POST", null, null, SELF, null, "csrf"));
        assertEquals(UiAccess.Verdict.ALLOW, decide("GET", null, "sess", null, null, null));
        // The cookie carries the session secret, never the URL's token.
        assertEquals(UiAccess.Verdict.UNAUTHORIZED, decide("GET", null, "tok", null, null, null));
    }

    @Test
    void aShadowingCookieOfTheSameNameDoesNotLockTheUserOut() {
        assertEquals(UiAccess.Verdict.ALLOW, access.decide("GET", null, List.of("attacker", "sess"), HOST, null, null, null).verdict());
        assertEquals(UiAccess.Verdict.UNAUTHORIZED, access.decide("GET", null, List.of("attacker", "x"), HOST, null, null, null).verdict());
        assertEquals(List.of("attacker", "sess"),
                UiFilter.cookies(List.of("kiln-ui-8421=attacker; kiln-ui=old; kiln-ui-84210=y", "kiln-ui-8421=\"sess\""), access.cookie()));
        assertEquals("kiln-ui-8421", access.cookie());
    }

    @Test
    void aChangeNeedsTheSameOriginAndTheCsrfToken() {
        assertEquals(UiAccess.Verdict.ALLOW, decide("POST", null, "sess", SELF, null, "csrf"));
        assertEquals(UiAccess.Verdict.ALLOW, decide("POST", null, "sess", null, SELF + "/", "csrf"));
        assertEquals(UiAccess.Verdict.FORBIDDEN, decide("POST", null, "sess", "http://127.0.0.1:9999", null, "csrf"));
        assertEquals(UiAccess.Verdict.FORBIDDEN, decide("POST", null, "sess", null, "http://127.0.0.1:84210/", "csrf"));
        assertEquals(UiAccess.Verdict.FORBIDDEN, decide("POST", null, "sess", null, null, "csrf"));
        assertEquals(UiAccess.Verdict.FORBIDDEN, decide("POST", null, "sess", SELF, null, null));
        assertEquals(UiAccess.Verdict.FORBIDDEN, decide("POST", null, "sess", SELF, null, "wrong"));
        assertEquals(UiAccess.Verdict.FORBIDDEN, decide("POST", null, "sess", "https://127.0.0.1:8421", null, "csrf"));
        UiAccess.Decision d = access.decide("POST", null, List.of("sess"), HOST, "http://evil.example", null, "csrf");
        assertEquals("cross-site request (Origin http://evil.example, this dashboard is http://127.0.0.1:8421"
                + " or http://localhost:8421 or http://[::1]:8421)", d.reason());
    }

    @Test
    void onlyTheDashboardsOwnHostNamesAreServedNoDnsRebinding() {
        String rebound = "rebind.attacker.example:8421";
        String origin = "http://" + rebound;
        for (UiAccess.Decision d : List.of(
                access.decide("GET", "tok", List.of(), rebound, null, null, null),
                access.decide("GET", null, List.of("sess"), rebound, null, null, null),
                access.decide("POST", null, List.of("sess"), rebound, origin, null, "csrf"),
                access.decide("GET", null, List.of("sess"), null, null, null, null))) {
            assertEquals(UiAccess.Verdict.MISDIRECTED, d.verdict(), d.toString());
        }
        assertEquals("Host rebind.attacker.example:8421 is not this dashboard's (it answers to 127.0.0.1:8421,"
                + " localhost:8421, [::1]:8421)", access.decide("GET", "tok", List.of(), rebound, null, null, null).reason());
        // The Origin is checked against the dashboard's names, not against the request's Host.
        assertEquals(UiAccess.Verdict.FORBIDDEN, decide("POST", null, "sess", origin, null, "csrf"));
        assertEquals(UiAccess.Verdict.ALLOW, access.decide("POST", null, List.of("sess"), "LOCALHOST:8421",
                "http://localhost:8421", null, "csrf").verdict());
        assertEquals(UiAccess.Verdict.ALLOW, access.decide("GET", null, List.of("sess"), "[::1]:8421", null, null, null).verdict());
        assertEquals(UiAccess.Verdict.MISDIRECTED, access.decide("GET", null, List.of("sess"), "127.0.0.1:9999", null, null, null).verdict());
        // --bind adds its own address; 0.0.0.0 adds none (a name for every address is no name).
        UiAccess bound = new UiAccess("tok", "sess", "csrf", "192.0.2.7").listeningOn(9000);
        assertEquals(UiAccess.Verdict.ALLOW, bound.decide("POST", null, List.of("sess"), "192.0.2.7:9000",
                "http://192.0.2.7:9000", null, "csrf").verdict());
        UiAccess any = new UiAccess("tok", "sess", "csrf", "0.0.0.0").listeningOn(9000);
        assertEquals(UiAccess.Verdict.MISDIRECTED, any.decide("GET", null, List.of("sess"), "0.0.0.0:9000", null, null, null).verdict());
        // Before the server listens, nothing is served.
        assertEquals(UiAccess.Verdict.MISDIRECTED, new UiAccess("tok", "sess", "csrf", null)
                .decide("GET", null, List.of("sess"), HOST, null, null, null).verdict());
    }

    @Test
    void aRotatedLogResumesFromTheFirstOffsetTheAgentKeeps() {
        // The agent's answer (agent LogTruncatedException) names the first offset it keeps.
        assertEquals(OptionalLong.of(1048576), Dashboard.firstKept(Status.OUT_OF_RANGE.withDescription("offset 0 is no longer kept:"
                + " this log keeps only its newest 10 MiB (from offset 1048576 now); read again from offset 1048576 or later")
                .asRuntimeException()));
        assertEquals(OptionalLong.empty(), Dashboard.firstKept(Status.OUT_OF_RANGE.withDescription(
                "from_offset 9 is beyond the end of the log (3 bytes)").asRuntimeException()));
        assertEquals(OptionalLong.empty(), Dashboard.firstKept(Status.INVALID_ARGUMENT.withDescription(
                "read again from offset 5 or later").asRuntimeException()));
    }

    @Test
    void eachRunHasItsOwnSecrets() {
        UiAccess a = UiAccess.random(null);
        UiAccess b = UiAccess.random(null);
        assertNotEquals(a.token(), b.token());
        assertNotEquals(a.token(), a.csrf());
        assertNotEquals(a.token(), a.session());
        assertNotEquals(a.session(), a.csrf());
    }
}
