package dev.kiln.controller.cli;

import dev.kiln.controller.KilnException;
import dev.kiln.controller.client.AgentClient;
import dev.kiln.controller.client.AgentEndpoint;
import dev.kiln.controller.client.ClientTls;
import dev.kiln.controller.fleet.ManagedInstance;
import dev.kiln.proto.agent.v1.StatusResponse;
import jakarta.inject.Inject;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;

/** {@code kiln ls}: the managed fleet, joined with each agent's status. */
@Command(name = "ls", mixinStandardHelpOptions = true,
        description = {"List Kiln's EC2 instances (by the kiln:managed tag) with each agent's state, build and lease,",
                "asked in parallel with a short timeout: an unreachable agent shows as such."})
public class LsCommand implements Runnable {

    @Inject
    Context context;

    @Mixin
    FleetMixin fleetOptions;

    @Mixin
    OutputMixin output;

    @Option(names = {"-w", "--watch"}, description = "Redraw every 5 seconds until interrupted.")
    boolean watch;

    @Option(names = "--agent-timeout", defaultValue = "3s", description = "How long to wait for each agent (default: ${DEFAULT-VALUE}).")
    String agentTimeout;

    record Row(ManagedInstance instance, AgentEndpoint endpoint, StatusResponse status, String error) {
    }

    @Override
    public void run() {
        do {
            List<Row> rows = rows();
            print(rows);
            if (watch) {
                try {
                    Thread.sleep(5000);
                } catch (InterruptedException e) {
                    return;
                }
                context.out().println();
            }
        } while (watch);
    }

    List<Row> rows() {
        List<ManagedInstance> instances = fleetOptions.fleet(context).list(List.of());
        // One TLS context for every agent: building one reads and parses the PEM files each time.
        io.netty.handler.ssl.SslContext tls = ClientTls.of(context.paths()).sslContext();
        Duration timeout = Durations.parse(agentTimeout);
        ExecutorService pool = Executors.newFixedThreadPool(Math.max(1, Math.min(16, instances.size())));
        try {
            List<CompletableFuture<Row>> futures = new ArrayList<>();
            for (ManagedInstance m : instances) {
                AgentEndpoint e = fleetOptions.endpoint(context, m);
                futures.add(CompletableFuture.supplyAsync(() -> {
                    if (e == null || !m.state().equals("running")) {
                        return new Row(m, e, null, e == null ? "no address" : "-");
                    }
                    try (AgentClient c = new AgentClient(e, tls, timeout)) {
                        return new Row(m, e, c.status(), null);
                    } catch (KilnException ex) {
                        return new Row(m, e, null, "unreachable");
                    }
                }, pool));
            }
            return futures.stream().map(f -> {
                try {
                    return f.get(timeout.toMillis() + 5000, TimeUnit.MILLISECONDS);
                } catch (Exception ex) {
                    return null;
                }
            }).filter(java.util.Objects::nonNull).toList();
        } finally {
            pool.shutdownNow();
        }
    }

    void print(List<Row> rows) {
        OutputFormat format = output.format(context.settings());
        if (format == OutputFormat.json) {
            StringBuilder b = new StringBuilder("[");
            for (int i = 0; i < rows.size(); i++) {
                Row r = rows.get(i);
                Map<String, String> o = new LinkedHashMap<>();
                o.put("id", r.instance().id());
                o.put("role", r.instance().role());
                o.put("labels", r.instance().labels().toString());
                o.put("state", r.instance().state());
                o.put("agent", agentState(r));
                o.put("build", build(r));
                o.put("lease_remaining", lease(r));
                o.put("address", r.endpoint() == null ? "" : r.endpoint().toString());
                o.put("expires_at", String.valueOf(r.instance().expiresAt()));
                b.append(i == 0 ? "\n  {" : ",\n  {");
                int j = 0;
                for (var en : o.entrySet()) {
                    b.append(j++ == 0 ? "" : ", ").append('"').append(en.getKey()).append("\": \"")
                            .append(en.getValue().replace("\\", "\\\\").replace("\"", "\\\"")).append('"');
                }
                b.append('}');
            }
            context.out().println(b.append(rows.isEmpty() ? "]" : "\n]"));
            return;
        }
        Table t = format == OutputFormat.wide
                ? new Table("INSTANCE", "ROLE", "LABELS", "STATE", "AGENT", "BUILD", "LEASE", "ADDRESS", "EXPIRES-AT", "LAUNCHED")
                : new Table("INSTANCE", "ROLE", "LABELS", "STATE", "AGENT", "BUILD", "LEASE", "ADDRESS");
        for (Row r : rows) {
            String labels = String.join(",", r.instance().labels().entrySet().stream().map(e -> e.getKey() + "=" + e.getValue()).toList());
            String address = r.endpoint() == null ? "" : r.endpoint().toString();
            if (format == OutputFormat.wide) {
                t.row(r.instance().id(), r.instance().role(), labels, r.instance().state(), agentState(r), build(r), lease(r),
                        address, String.valueOf(r.instance().expiresAt()), String.valueOf(r.instance().launchTime()));
            } else {
                t.row(r.instance().id(), r.instance().role(), labels, r.instance().state(), agentState(r), build(r), lease(r), address);
            }
        }
        t.print(context.out());
    }

    static String agentState(Row r) {
        if (r.status() == null) {
            return r.error();
        }
        return r.status().getState().name().replace("AGENT_STATE_", "").toLowerCase(Locale.ROOT);
    }

    static String build(Row r) {
        if (r.status() == null || r.status().getCurrentBuild().getId().isEmpty()) {
            return "";
        }
        var b = r.status().getCurrentBuild();
        return b.getId() + " " + b.getProgress().getDone() + "/" + b.getProgress().getTotal();
    }

    static String lease(Row r) {
        if (r.status() != null) {
            return r.status().getLease().getForever() ? "forever"
                    : Durations.format(Duration.ofSeconds(r.status().getLease().getRemaining().getSeconds()));
        }
        Instant e = r.instance().expiresAt();
        return e == null ? "" : "~" + Durations.format(Duration.between(Instant.now(), e).isNegative() ? Duration.ZERO
                : Duration.between(Instant.now(), e));
    }
}
