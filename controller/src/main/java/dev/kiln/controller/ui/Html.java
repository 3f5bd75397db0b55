package dev.kiln.controller.ui;

import com.google.common.escape.Escaper;
import com.google.common.html.HtmlEscapers;
import dev.kiln.controller.cli.ServiceLinks;
import dev.kiln.controller.fleet.FleetSnapshot;
import dev.kiln.proto.agent.v1.Build;
import dev.kiln.proto.agent.v1.Service;
import dev.kiln.proto.agent.v1.StatusResponse;

import java.time.Duration;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;

/**
 * The dashboard's HTML: the page, the fleet table's rows and the snapshots table. Every value
 * that comes from the fleet, an agent or config.yml (labels above all: they are user input) goes
 * through {@link #esc}; nothing else builds markup.
 */
final class Html {

    private static final Escaper ESCAPER = HtmlEscapers.htmlEscaper();

    private Html() {
    }

    /** Text or an attribute value, escaped for HTML (&amp;, &lt;, &gt;, &quot; and &#39;). */
    static String esc(String s) {
        return s == null ? "" : ESCAPER.escape(s);
    }

    /** The whole page; rows arrive from /fleet and /snapshots, which the script asks for at once. */
    static String page(String csrf, String provider, Map<String, Map<String, String>> templates) {
        StringBuilder b = new StringBuilder(4096);
        b.append("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">")
                .append("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">")
                .append("<meta name=\"kiln-csrf\" content=\"").append(esc(csrf)).append("\">")
                .append("<title>kiln fleet</title><link rel=\"stylesheet\" href=\"/static/ui.css\">")
                .append("<script src=\"/static/ui.js\" defer></script></head><body>\n")
                .append("<header><h1>kiln fleet</h1><p>provider <strong>").append(esc(provider))
                .append("</strong> · <span id=\"refreshed\" aria-live=\"polite\">loading…</span></p>")
                .append("<p id=\"message\" role=\"status\" aria-live=\"polite\"></p></header>\n<main>\n")
                .append("<section aria-labelledby=\"fleet-h\"><h2 id=\"fleet-h\">Instances</h2>")
                .append("<div class=\"scroll\"><table id=\"fleet\"><thead><tr>")
                .append("<th scope=\"col\">Instance</th><th scope=\"col\">Role</th><th scope=\"col\">Labels</th>")
                .append("<th scope=\"col\">State</th><th scope=\"col\">Agent</th><th scope=\"col\">Build</th>")
                .append("<th scope=\"col\">Lease ends</th><th scope=\"col\">Services</th><th scope=\"col\">Actions</th>")
                .append("</tr></thead><tbody id=\"fleet-rows\"><tr><td colspan=\"9\">loading…</td></tr></tbody></table></div>")
                .append("<p><button type=\"button\" id=\"stop-all\">Stop all</button></p></section>\n");
        launchForm(b, templates);
        b.append("<section aria-labelledby=\"log-h\" id=\"log\" hidden><h2 id=\"log-h\">Log <span id=\"log-name\"></span></h2>")
                .append("<p><button type=\"button\" id=\"log-close\">Close</button> <span id=\"log-state\" aria-live=\"polite\"></span></p>")
                .append("<pre id=\"log-text\" tabindex=\"0\"></pre></section>\n")
                .append("<section aria-labelledby=\"snap-h\"><h2 id=\"snap-h\">Snapshots</h2><div class=\"scroll\">")
                .append("<table id=\"snapshots\"><thead><tr><th scope=\"col\">Volume role</th><th scope=\"col\">Collection</th>")
                .append("<th scope=\"col\">Newest</th><th scope=\"col\">Age</th><th scope=\"col\">Count</th></tr></thead>")
                .append("<tbody id=\"snapshot-rows\"><tr><td colspan=\"5\">loading…</td></tr></tbody></table></div></section>\n")
                .append("</main></body></html>\n");
        return b.toString();
    }

    /** The launch form: a template to launch, and a field for each label the template declares. */
    private static void launchForm(StringBuilder b, Map<String, Map<String, String>> templates) {
        b.append("<section aria-labelledby=\"launch-h\"><h2 id=\"launch-h\">Launch</h2>");
        if (templates.isEmpty()) {
            b.append("<p>No launch templates in config.yml yet. Add one, e.g.</p><pre>templates:\n  preview:\n    ttl: 2h\n")
                    .append("    label: {pr: \"\", branch: main}</pre><p>and reload this page.</p></section>\n");
            return;
        }
        b.append("<form id=\"launch\" method=\"post\" action=\"/launch\"><p><label for=\"launch-template\">Template</label> ")
                .append("<select id=\"launch-template\" name=\"template\">");
        templates.keySet().forEach(t -> b.append("<option value=\"").append(esc(t)).append("\">").append(esc(t)).append("</option>"));
        b.append("</select></p>");
        boolean first = true;
        for (Map.Entry<String, Map<String, String>> t : templates.entrySet()) {
            b.append("<fieldset data-template=\"").append(esc(t.getKey())).append("\"").append(first ? "" : " hidden")
                    .append("><legend>Labels of ").append(esc(t.getKey())).append("</legend>");
            if (t.getValue().isEmpty()) {
                b.append("<p>This template declares no labels.</p>");
            }
            for (Map.Entry<String, String> l : t.getValue().entrySet()) {
                String id = "label-" + t.getKey() + "-" + l.getKey();
                b.append("<p><label for=\"").append(esc(id)).append("\">").append(esc(l.getKey())).append("</label> ")
                        .append("<input id=\"").append(esc(id)).append("\" name=\"label.").append(esc(l.getKey()))
                        .append("\" value=\"").append(esc(l.getValue())).append("\"").append(first ? "" : " disabled").append("></p>");
            }
            b.append("</fieldset>");
            first = false;
        }
        b.append("<p><label for=\"launch-ttl\">Lease</label> <input id=\"launch-ttl\" name=\"ttl\" size=\"6\" ")
                .append("placeholder=\"template's\" pattern=\"[0-9]+[smhd]([0-9]+[smhd])*\"> ")
                .append("<button type=\"submit\" id=\"launch-submit\">Launch</button></p></form></section>\n");
    }

    /** The fleet table's rows. */
    static String rows(List<Dashboard.Row> rows, Instant now) {
        if (rows.isEmpty()) {
            return "<tr><td colspan=\"9\">No instances are running.</td></tr>";
        }
        StringBuilder b = new StringBuilder(rows.size() * 1024);
        for (Dashboard.Row r : rows) {
            row(b, r, now);
        }
        return b.toString();
    }

    private static void row(StringBuilder b, Dashboard.Row r, Instant now) {
        String id = r.instance().id();
        StatusResponse s = r.status();
        b.append("<tr id=\"row-").append(esc(id)).append("\" data-instance=\"").append(esc(id)).append("\">")
                .append("<th scope=\"row\">").append(esc(id)).append("</th><td>").append(esc(r.instance().role())).append("</td><td>");
        labels(r).forEach((k, v) -> b.append("<span class=\"label\">").append(esc(k)).append('=').append(esc(v)).append("</span> "));
        b.append("</td><td>").append(esc(r.instance().state())).append("</td><td class=\"agent-")
                .append(s == null ? "none" : "ok").append("\">").append(esc(Dashboard.agentState(r))).append("</td><td class=\"build\">");
        build(b, s);
        b.append("</td><td>");
        lease(b, r, now);
        b.append("</td><td>");
        services(b, r);
        b.append("</td><td class=\"actions\">");
        actions(b, r);
        b.append("</td></tr>\n");
    }

    /** The fleet's labels (tags or the local record), with the agent's where the record has none. */
    static Map<String, String> labels(Dashboard.Row r) {
        Map<String, String> all = new TreeMap<>(r.instance().labels());
        if (r.status() != null) {
            r.status().getLabelsMap().forEach(all::putIfAbsent);
        }
        return all;
    }

    private static void build(StringBuilder b, StatusResponse s) {
        if (s == null) {
            return;
        }
        Build current = s.getCurrentBuild();
        if (!current.getId().isEmpty()) {
            progress(b, current.getId(), current);
        } else if (s.hasBootScript()) {
            progress(b, "boot script", s.getBootScript());
        }
    }

    private static void progress(StringBuilder b, String name, Build build) {
        long done = build.getProgress().getDone();
        long total = build.getProgress().getTotal();
        b.append(esc(name)).append(' ').append(esc(state(build)));
        if (total > 0) {
            b.append(" <progress max=\"").append(total).append("\" value=\"").append(Math.min(done, total)).append("\">")
                    .append(done).append('/').append(total).append("</progress> ").append(done).append('/').append(total);
        }
    }

    static String state(Build build) {
        return build.getState().name().replace("BUILD_STATE_", "").toLowerCase(Locale.ROOT);
    }

    /** The deadline as a time element: the script shows it as local time and time left. */
    private static void lease(StringBuilder b, Dashboard.Row r, Instant now) {
        StatusResponse s = r.status();
        if (s != null && s.getLease().getForever()) {
            b.append("never");
            return;
        }
        Instant deadline = s != null && s.getLease().hasDeadline()
                ? Instant.ofEpochSecond(s.getLease().getDeadline().getSeconds()) : r.instance().expiresAt();
        if (deadline == null) {
            return;
        }
        Duration left = Duration.between(now, deadline);
        String iso = deadline.truncatedTo(ChronoUnit.SECONDS).toString();
        b.append("<time class=\"deadline\" datetime=\"").append(esc(iso)).append("\">").append(esc(iso)).append("</time> <span class=\"left\">")
                .append(s == null ? "~" : "").append(left.isNegative() ? "due" : "in " + dev.kiln.time.Durations.format(
                        left.truncatedTo(ChronoUnit.SECONDS)))
                .append("</span>");
    }

    /** Each service as a link to http://HOST:PORT/PATH, HOST by the address rule `kiln ls` uses. */
    private static void services(StringBuilder b, Dashboard.Row r) {
        if (r.status() == null) {
            return;
        }
        for (Service svc : r.status().getServicesList()) {
            String state = svc.getState().name().replace("SERVICE_STATE_", "").toLowerCase(Locale.ROOT).replace('_', '-');
            b.append("<span class=\"service\">");
            String url = serviceUrl(r, svc);
            if (url != null) {
                b.append("<a href=\"").append(esc(url)).append("\" target=\"_blank\" rel=\"noopener noreferrer\">")
                        .append(esc(svc.getName())).append("</a>");
            } else {
                b.append(esc(svc.getName()));
            }
            b.append(" <small>").append(esc(state)).append("</small></span> ");
        }
    }

    /** The service's link, or null when the instance has no address by the rule. */
    static String serviceUrl(Dashboard.Row r, Service svc) {
        if (r.endpoint() == null || svc.getPort() < 1 || svc.getPort() > 65535) {
            return null;
        }
        return ServiceLinks.url(r.endpoint().host(), svc);
    }

    /** Extend, Stop and one button per log the agent has (the build, the boot script, each service, its own). */
    private static void actions(StringBuilder b, Dashboard.Row r) {
        String id = esc(r.instance().id());
        boolean running = r.instance().state().equals("running");
        if (running) {
            b.append("<button type=\"button\" id=\"extend-").append(id).append("\" data-action=\"extend\" data-by=\"1h\">Extend +1h</button> ")
                    .append("<button type=\"button\" id=\"extend-by-").append(id).append("\" data-action=\"extend\">Extend…</button> ")
                    .append("<button type=\"button\" id=\"stop-").append(id).append("\" data-action=\"stop\">Stop</button> ");
        }
        if (r.status() == null) {
            return;
        }
        b.append("<div class=\"logs\">");
        List<String[]> logs = new ArrayList<>();
        if (!r.status().getCurrentBuild().getId().isEmpty()) {
            logs.add(new String[]{r.status().getCurrentBuild().getId(), "build log"});
        }
        if (r.status().hasBootScript()) {
            logs.add(new String[]{"boot", "boot log"});
        }
        r.status().getServicesList().stream().filter(svc -> !svc.getCommand().isEmpty())
                .forEach(svc -> logs.add(new String[]{"service:" + svc.getName(), svc.getName() + " log"}));
        logs.add(new String[]{"agent", "agent log"});
        for (String[] l : logs) {
            b.append("<button type=\"button\" class=\"log\" id=\"log-").append(id).append('-').append(esc(l[0].replace(':', '-')))
                    .append("\" data-action=\"log\" data-log=\"").append(esc(l[0])).append("\">").append(esc(l[1])).append("</button> ");
        }
        b.append("</div>");
    }

    /** The snapshots table: per volume role and collection, the newest snapshot, its age and how many there are. */
    static String snapshots(List<FleetSnapshot> all, Instant now) {
        Map<List<String>, List<FleetSnapshot>> byRole = new LinkedHashMap<>();
        all.stream().sorted(Comparator.comparing(FleetSnapshot::volumeRole).thenComparing(FleetSnapshot::collection))
                .forEach(s -> byRole.computeIfAbsent(List.of(s.volumeRole(), s.collection()), k -> new ArrayList<>()).add(s));
        if (byRole.isEmpty()) {
            return "<tr><td colspan=\"5\">No snapshots yet.</td></tr>";
        }
        StringBuilder b = new StringBuilder();
        byRole.forEach((k, list) -> {
            FleetSnapshot newest = list.stream().max(Comparator.comparing(FleetSnapshot::startTime)).orElseThrow();
            Duration age = Duration.between(newest.startTime(), now);
            b.append("<tr><th scope=\"row\">").append(esc(k.get(0))).append("</th><td>").append(esc(k.get(1).isEmpty() ? "-" : k.get(1)))
                    .append("</td><td>").append(esc(newest.id())).append(" <small>").append(esc(newest.state())).append("</small></td><td>")
                    .append(esc(dev.kiln.time.Durations.format(age.isNegative() ? Duration.ZERO : age.truncatedTo(ChronoUnit.SECONDS))))
                    .append("</td><td>").append(list.size()).append("</td></tr>\n");
        });
        return b.toString();
    }
}
