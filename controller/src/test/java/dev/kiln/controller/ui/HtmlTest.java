package dev.kiln.controller.ui;

import dev.kiln.controller.client.AgentEndpoint;
import dev.kiln.controller.fleet.ManagedInstance;
import dev.kiln.proto.agent.v1.Service;
import dev.kiln.proto.agent.v1.ServiceState;
import dev.kiln.proto.agent.v1.StatusResponse;
import org.junit.jupiter.api.Test;

import java.time.Instant;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The dashboard's markup: user input stays text, and service links follow the address rule. */
class HtmlTest {

    static final Instant NOW = Instant.parse("2026-12-07T12:00:00Z");

    static Dashboard.Row row(Map<String, String> labels, StatusResponse status) {
        ManagedInstance m = new ManagedInstance("local-0a1b2c3d", "preview", labels, "running", "127.0.0.1", null,
                NOW.plusSeconds(3600), "local-0a1b2c3d", 7443, NOW);
        return new Dashboard.Row(m, m.endpoint("auto"), status, status == null ? "unreachable" : null);
    }

    @Test
    void labelsFromTheFleetAndTheAgentAreEscapedNotMarkup() {
        StatusResponse status = StatusResponse.newBuilder()
                .putLabels("title", "\"><img src=x onerror=alert(1)>").build();
        String html = Html.rows(List.of(row(Map.of("pr", "<script>alert(1)</script>"), status)), NOW);
        assertTrue(html.contains("pr=&lt;script&gt;alert(1)&lt;/script&gt;"), html);
        assertTrue(html.contains("title=&quot;&gt;&lt;img src=x onerror=alert(1)&gt;"), html);
        assertFalse(html.contains("<script"), html);
        assertFalse(html.contains("<img"), html);
    }

    @Test
    void aServiceLinksToTheAgentsHostAtItsPortAndPath() {
        StatusResponse status = StatusResponse.newBuilder()
                .addServices(Service.newBuilder().setName("web").setPort(8000).setPath("/app?a=1&b=2")
                        .setState(ServiceState.SERVICE_STATE_RUNNING).setCommand("python3 -m http.server 8000"))
                .addServices(Service.newBuilder().setName("compose").setPort(3000)
                        .setState(ServiceState.SERVICE_STATE_UNSPECIFIED))
                .build();
        Dashboard.Row r = row(Map.of(), status);
        assertEquals("http://127.0.0.1:8000/app?a=1&b=2", Html.serviceUrl(r, status.getServices(0)));
        assertEquals("http://127.0.0.1:3000/", Html.serviceUrl(r, status.getServices(1)));
        String html = Html.rows(List.of(r), NOW);
        assertTrue(html.contains("<a href=\"http://127.0.0.1:8000/app?a=1&amp;b=2\" target=\"_blank\" rel=\"noopener noreferrer\">web</a>"),
                html);
        assertTrue(html.contains("data-log=\"service:web\""), "a service with a command has a log: " + html);
        assertFalse(html.contains("data-log=\"service:compose\""), "a declared-only endpoint has none: " + html);
    }

    @Test
    void anUnreachableAgentShowsAsSuchWithTheRecordedDeadline() {
        String html = Html.rows(List.of(row(Map.of(), null)), NOW);
        assertTrue(html.contains("<td class=\"agent-none\">unreachable</td>"), html);
        assertTrue(html.contains("datetime=\"2026-12-07T13:00:00Z\""), html);
        assertTrue(html.contains("~in 1h"), html);
    }

    @Test
    void snapshotsShowTheNewestOfEachRoleWithItsAgeAndCount() {
        List<dev.kiln.controller.fleet.FleetSnapshot> all = List.of(
                new dev.kiln.controller.fleet.FleetSnapshot("snap-1", "builds", "completed", "100%", 10, NOW.minusSeconds(7200), "i-1", "", true, "vibes"),
                new dev.kiln.controller.fleet.FleetSnapshot("snap-2", "builds", "completed", "100%", 10, NOW.minusSeconds(600), "i-1", "", true, "vibes"),
                new dev.kiln.controller.fleet.FleetSnapshot("snap-3", "data", "pending", "10%", 1, NOW.minusSeconds(30), "i-2", "", true, ""));
        String html = Html.snapshots(all, NOW);
        assertTrue(html.contains("<tr><th scope=\"row\">builds</th><td>vibes</td><td>snap-2 <small>completed</small></td><td>10m</td><td>2</td></tr>"),
                html);
        assertTrue(html.contains("<tr><th scope=\"row\">data</th><td>-</td><td>snap-3 <small>pending</small></td><td>30s</td><td>1</td></tr>"),
                html);
    }

    @Test
    void templateNamesAndLabelDefaultsAreEscapedInTheForm() {
        String page = Html.page("csrf\"", "local", Map.of("preview", Map.of("branch", "\"><script>x</script>")));
        assertTrue(page.contains("value=\"&quot;&gt;&lt;script&gt;x&lt;/script&gt;\""), page);
        assertTrue(page.contains("content=\"csrf&quot;\""), page);
        assertFalse(page.contains("<script>x"), page);
    }
}
