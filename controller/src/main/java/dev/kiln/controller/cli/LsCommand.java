package dev.kiln.controller.cli;

import com.google.common.util.concurrent.ListenableFuture;
import com.google.gson.JsonArray;
import com.google.gson.JsonNull;
import com.google.gson.JsonObject;
import com.google.gson.JsonPrimitive;
import dev.kiln.controller.client.AgentClient;
import dev.kiln.controller.client.AgentEndpoint;
import dev.kiln.controller.client.ClientTls;
import dev.kiln.controller.fleet.ManagedInstance;
import dev.kiln.proto.agent.v1.StatusResponse;
import io.grpc.Deadline;
import jakarta.inject.Inject;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/** {@code kiln ls}: the managed fleet, joined with each agent's status. */
@Command(name = "ls", mixinStandardHelpOptions = true,
        description = {"List Kiln's instances with each agent's state, build and lease. The agents are asked in",
                "parallel with a short timeout (an unreachable agent shows as such). On the local provider (the default) its",
                "local-... instances, on EC2 (--provider ec2) the i-... instances tagged kiln:managed.",
                "-o json prints the shape docs/cli.md describes under \"JSON output\"."})
public class LsCommand implements Runnable {

    @Inject
    Context context;

    @Inject
    Fleets fleets;

    @Inject
    AgentClients clients;

    @Mixin
    FleetMixin fleetOptions;

    @Mixin
    OutputMixin output;

    @Option(names = {"-w", "--watch"}, description = "Redraw every 5 seconds until interrupted.")
    boolean watch;

    @Option(names = {"-a", "--all"}, description = {"Also list ended instances: when and how each ended (the local fleet keeps",
            "a short record of each; EC2 lists terminated instances for about an hour)."})
    boolean all;

    /** The records of ended instances by id, for the ENDED column of --all. */
    private final Map<String, dev.kiln.controller.fleet.EndedInstance> ended = new java.util.HashMap<>();

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
        dev.kiln.controller.fleet.Fleet fleet = fleetOptions.fleet(fleets);
        List<ManagedInstance> instances = new ArrayList<>(fleet.list(List.of()));
        if (all) {
            java.util.Set<String> live = new java.util.HashSet<>(instances.stream().map(ManagedInstance::id).toList());
            fleet.ended().forEach(r -> ended.put(r.id(), r));
            fleet.list(List.of("terminated")).stream().filter(m -> !live.contains(m.id())).forEach(instances::add);
        }
        ClientTls.of(context.paths()); // without `kiln init`, says so before any agent is asked
        // Every agent is asked at once, each for at most the timeout from when its connection
        // began (the local fleet's connections open while the CLI starts: EarlyConnect).
        Duration timeout = Durations.parse(agentTimeout);
        List<AgentClient> open = new ArrayList<>();
        List<Asked> asked = new ArrayList<>();
        try {
            for (ManagedInstance m : instances) {
                AgentEndpoint e = fleetOptions.endpoint(context, m);
                if (e == null || !m.state().equals("running")) {
                    asked.add(new Asked(new Row(m, e, null, e == null && m.state().equals("running") ? "no address" : "-"), null, null));
                    continue;
                }
                AgentClient c = clients.client(e, timeout);
                open.add(c);
                Deadline deadline = c.contactDeadline();
                asked.add(new Asked(new Row(m, e, null, "unreachable"), c.status(deadline), deadline));
            }
            List<Row> rows = new ArrayList<>();
            for (Asked a : asked) {
                rows.add(a.answer());
            }
            return rows;
        } finally {
            AgentClient.closeAll(open);
        }
    }

    /** An instance's row without its agent's status, and the status call and its deadline, if one was made. */
    record Asked(Row row, ListenableFuture<StatusResponse> status, Deadline deadline) {

        /** The row with the agent's status, or as it is when the agent did not answer. */
        Row answer() {
            if (status == null) {
                return row;
            }
            try {
                // The deadline ends every call; this bound only guards against a wedged channel.
                StatusResponse s = status.get(deadline.timeRemaining(TimeUnit.MILLISECONDS) + 5000, TimeUnit.MILLISECONDS);
                return new Row(row.instance(), row.endpoint(), s, null);
            } catch (ExecutionException | TimeoutException e) {
                return row;
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return row;
            }
        }
    }

    void print(List<Row> rows) {
        OutputFormat format = output.format(context.settings());
        if (format == OutputFormat.json) {
            JsonArray list = new JsonArray();
            rows.forEach(r -> {
                JsonObject o = json(r);
                if (all) {
                    var e = ended.get(r.instance().id());
                    o.add("ended_at", e == null ? JsonNull.INSTANCE : Json.time(e.ended()));
                    o.add("ended_how", e == null ? JsonNull.INSTANCE : new JsonPrimitive(e.how()));
                }
                list.add(o);
            });
            Json.print(context.out(), list);
            return;
        }
        Table t = format == OutputFormat.wide
                ? new Table(all ? new String[] {"INSTANCE", "ROLE", "LABELS", "STATE", "AGENT", "BUILD", "LEASE", "ADDRESS",
                "EXPIRES-AT", "LAUNCHED", "LINKS", "ENDED"} : new String[] {"INSTANCE", "ROLE", "LABELS", "STATE", "AGENT", "BUILD",
                "LEASE", "ADDRESS", "EXPIRES-AT", "LAUNCHED", "LINKS"})
                : new Table(all ? new String[] {"INSTANCE", "ROLE", "LABELS", "STATE", "AGENT", "BUILD", "LEASE", "ADDRESS", "ENDED"}
                : new String[] {"INSTANCE", "ROLE", "LABELS", "STATE", "AGENT", "BUILD", "LEASE", "ADDRESS"});
        for (Row r : rows) {
            String labels = String.join(",", r.instance().labels().entrySet().stream().map(e -> e.getKey() + "=" + e.getValue()).toList());
            String address = r.endpoint() == null ? "" : r.endpoint().toString();
            List<String> cells = new ArrayList<>(List.of(r.instance().id(), r.instance().role(), labels, r.instance().state(),
                    agentState(r), build(r), lease(r), address));
            if (format == OutputFormat.wide) {
                cells.add(String.valueOf(r.instance().expiresAt()));
                cells.add(String.valueOf(r.instance().launchTime()));
                cells.add(ServiceLinks.cell(r.endpoint() == null ? null : r.endpoint().host(), r.status()));
            }
            if (all) {
                var e = ended.get(r.instance().id());
                cells.add(e == null ? "" : e.ended() + " " + e.how());
            }
            t.row(cells.toArray(String[]::new));
        }
        t.print(context.out());
    }

    /** One instance as `kiln ls -o json` prints it (docs/cli.md, "JSON output"). */
    static JsonObject json(Row r) {
        ManagedInstance m = r.instance();
        JsonObject o = new JsonObject();
        o.addProperty("id", m.id());
        o.addProperty("role", m.role());
        o.add("labels", Json.object(m.labels()));
        o.addProperty("state", m.state());
        o.add("address", r.endpoint() == null ? JsonNull.INSTANCE : new JsonPrimitive(r.endpoint().toString()));
        o.add("launched_at", Json.time(m.launchTime()));
        o.add("expires_at", Json.time(m.expiresAt()));
        o.add("agent", r.status() == null && "-".equals(r.error()) ? JsonNull.INSTANCE : new JsonPrimitive(agentState(r)));
        o.add("status", r.status() == null ? JsonNull.INSTANCE : Json.of(r.status()));
        o.add("links", ServiceLinks.json(r.endpoint() == null ? null : r.endpoint().host(), r.status()));
        o.add("boot", ServiceLinks.bootJson(r.status()));
        return o;
    }

    static String agentState(Row r) {
        if (r.status() == null) {
            return r.error();
        }
        String state = r.status().getState().name().replace("AGENT_STATE_", "").toLowerCase(Locale.ROOT);
        // A schedule whose runs fail is marked until one succeeds (kiln status says why).
        java.util.List<String> failing = r.status().getSchedulesList().stream().filter(s -> s.getFailures() > 0)
                .map(dev.kiln.proto.agent.v1.Schedule::getRole).toList();
        return failing.isEmpty() ? state : state + ", snapshots failing (" + String.join(", ", failing) + ")";
    }

    static String build(Row r) {
        if (r.status() == null || r.status().getCurrentBuild().getId().isEmpty()) {
            // A failed boot script is why its services never started: worth the column when nothing builds.
            return ServiceLinks.bootFailed(r.status()) ? "boot " + ServiceLinks.boot(r.status()) : "";
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
