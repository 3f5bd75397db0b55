package dev.kiln.controller.ui;

import dev.kiln.controller.ExitCodes;
import dev.kiln.controller.KilnCli;
import dev.kiln.controller.KilnException;
import dev.kiln.controller.cli.AgentClients;
import dev.kiln.controller.cli.Context;
import dev.kiln.controller.cli.Fleets;
import dev.kiln.controller.client.AgentClient;
import dev.kiln.controller.client.AgentEndpoint;
import dev.kiln.controller.config.CliEnvironment;
import dev.kiln.controller.fleet.Fleet;
import dev.kiln.controller.fleet.FleetSnapshot;
import dev.kiln.controller.fleet.ManagedInstance;
import dev.kiln.proto.agent.v1.LogChunk;
import dev.kiln.proto.agent.v1.StatusResponse;
import dev.kiln.proto.agent.v1.StreamLogsRequest;
import io.grpc.StatusRuntimeException;

import java.io.ByteArrayOutputStream;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.OptionalLong;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.regex.Pattern;

/**
 * What the dashboard shows and does, over the CLI's own beans: the fleet from the provider, each
 * agent's status (asked in parallel, each with its own timeout), logs, and the actions, which run
 * the CLI's commands themselves ({@code kiln extend}, {@code stop}, {@code launch}) so that they
 * behave and fail exactly as on the command line. It keeps no state between requests.
 */
final class Dashboard implements AutoCloseable {

    /** One instance with its agent's status, or why there is none. */
    record Row(ManagedInstance instance, AgentEndpoint endpoint, StatusResponse status, String agentProblem) {
    }

    /** What a command printed and returned. */
    record Outcome(int exitCode, String out, String err) {
        boolean ok() {
            return exitCode == ExitCodes.OK;
        }
    }

    /** The most of a log one request returns; the script asks again at once for more. */
    static final int LOG_BYTES = 256 * 1024;

    private static final Pattern LOG_NAME = Pattern.compile("agent|boot|service:[a-z0-9][a-z0-9-]{0,30}|[A-Za-z0-9][A-Za-z0-9._-]{0,127}");
    private static final Pattern DURATION = Pattern.compile("[0-9]{1,6}[smhd]([0-9]{1,6}[smhd]){0,3}");

    private final Context context;
    private final Fleets fleets;
    private final AgentClients clients;
    private final Duration agentTimeout;
    private final Map<String, String> overrides;
    private final ExecutorService pool = Executors.newCachedThreadPool(r -> {
        Thread t = new Thread(r, "kiln-ui-agents");
        t.setDaemon(true);
        return t;
    });

    /**
     * @param overrides the settings `kiln ui` was started with (KILN_PROVIDER, ...), which every
     *                  command it runs gets too
     */
    Dashboard(Context context, Fleets fleets, AgentClients clients, Duration agentTimeout, Map<String, String> overrides) {
        this.context = context;
        this.fleets = fleets;
        this.clients = clients;
        this.agentTimeout = agentTimeout;
        this.overrides = Map.copyOf(overrides);
    }

    String provider() {
        return context.settings().get("provider", null).orElse("local");
    }

    Fleet fleet() {
        return provider().equals("ec2") ? fleets.ec2() : fleets.local();
    }

    /** Where an instance's agent listens, by the address rule `kiln ls` uses. */
    AgentEndpoint endpoint(ManagedInstance m) {
        return m.endpoint(context.settings().get("address", null).orElse("auto"));
    }

    /**
     * The fleet and each running agent's status. The agents are asked in parallel; one that does
     * not answer within the agent timeout shows as unreachable and holds up no other.
     */
    List<Row> rows() {
        List<ManagedInstance> instances = fleet().list(List.of());
        clients.sslContext(); // the TLS files are read once, here, for every agent's client
        List<CompletableFuture<Row>> asked = new ArrayList<>();
        for (ManagedInstance m : instances) {
            AgentEndpoint e = endpoint(m);
            if (e == null || !m.state().equals("running")) {
                asked.add(CompletableFuture.completedFuture(new Row(m, e, null, e == null && m.state().equals("running") ? "no address" : "-")));
                continue;
            }
            asked.add(CompletableFuture.supplyAsync(() -> {
                try (AgentClient c = clients.client(e, agentTimeout)) {
                    return new Row(m, e, c.status(), null);
                } catch (KilnException | StatusRuntimeException ex) {
                    return new Row(m, e, null, "unreachable");
                }
            }, pool).completeOnTimeout(new Row(m, e, null, "unreachable"), agentTimeout.toMillis() + 2000, TimeUnit.MILLISECONDS));
        }
        return asked.stream().map(CompletableFuture::join).toList();
    }

    static String agentState(Row r) {
        return r.status() == null ? r.agentProblem()
                : r.status().getState().name().replace("AGENT_STATE_", "").toLowerCase(Locale.ROOT);
    }

    List<FleetSnapshot> snapshots() {
        return fleet().snapshots(null);
    }

    /** Launch templates from config.yml with the labels each declares (name to default value). */
    Map<String, Map<String, String>> templates() {
        Map<String, Map<String, String>> out = new LinkedHashMap<>();
        for (String name : context.settings().templateNames()) {
            Map<String, String> labels = new LinkedHashMap<>();
            if (context.settings().template(name).orElseThrow().get("label") instanceof Map<?, ?> m) {
                m.forEach((k, v) -> labels.put(String.valueOf(k), v == null ? "" : String.valueOf(v)));
            }
            out.put(name, labels);
        }
        return out;
    }

    /** Bytes of a log from offset {@code from}. */
    record LogPart(long from, byte[] data) {
    }

    /**
     * A log's bytes from {@code from} that the agent has now (at most {@link #LOG_BYTES}). When the
     * agent no longer keeps the bytes at {@code from} (a service's log rotated), the part starts
     * at the first offset it keeps, which its OUT_OF_RANGE answer names.
     */
    LogPart log(String instanceId, String name, long from) {
        try {
            return new LogPart(from, read(instanceId, name, from));
        } catch (KilnException e) {
            OptionalLong kept = e.getCause() instanceof StatusRuntimeException s ? firstKept(s) : OptionalLong.empty();
            if (kept.isEmpty() || kept.getAsLong() <= from) {
                throw e;
            }
            return new LogPart(kept.getAsLong(), read(instanceId, name, kept.getAsLong()));
        }
    }

    private static final Pattern FIRST_KEPT = Pattern.compile("read again from offset ([0-9]{1,18}) or later");

    /** The first offset a rotated log still keeps, from the agent's OUT_OF_RANGE answer. */
    static OptionalLong firstKept(StatusRuntimeException e) {
        String d = e.getStatus().getDescription();
        if (e.getStatus().getCode() != io.grpc.Status.Code.OUT_OF_RANGE || d == null) {
            return OptionalLong.empty();
        }
        java.util.regex.Matcher m = FIRST_KEPT.matcher(d);
        return m.find() ? OptionalLong.of(Long.parseLong(m.group(1))) : OptionalLong.empty();
    }

    private byte[] read(String instanceId, String name, long from) {
        if (!LOG_NAME.matcher(name).matches()) {
            throw new KilnException(ExitCodes.USAGE, "'" + name + "' is not a log: a build id, boot, service:NAME or agent");
        }
        ManagedInstance m = instance(instanceId);
        AgentEndpoint e = endpoint(m);
        if (e == null) {
            throw new KilnException(ExitCodes.UNREACHABLE, m.id() + " has no usable address (see --address)");
        }
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try (AgentClient c = clients.client(e, context.timeout(null))) {
            try {
                Iterator<LogChunk> chunks = c.streamingStub().streamLogs(StreamLogsRequest.newBuilder()
                        .setBuildId(name).setFromOffset(from).setFollow(false).build());
                while (chunks.hasNext() && out.size() < LOG_BYTES) {
                    LogChunk chunk = chunks.next();
                    long skip = Math.max(0, from + out.size() - chunk.getOffset());
                    if (chunk.getOffset() > from + out.size()) {
                        break; // a hole: never show a log with bytes missing
                    }
                    if (skip < chunk.getData().size()) {
                        chunk.getData().substring((int) skip).writeTo(out);
                    }
                }
            } catch (StatusRuntimeException ex) {
                throw c.translate(ex);
            } catch (java.io.IOException ex) {
                throw new IllegalStateException(ex);
            }
        }
        return out.toByteArray();
    }

    /** A managed instance of the provider, by id (the id comes from the request: checked first). */
    ManagedInstance instance(String id) {
        if (id == null || !id.matches("local-[0-9a-f]{1,32}|i-[0-9a-f]{8,17}")) {
            throw new KilnException(ExitCodes.USAGE, "'" + id + "' is not an instance id (local-... or i-...)");
        }
        return fleet().get(id);
    }

    Outcome extend(String id, String by) {
        instance(id);
        if (by == null || !DURATION.matcher(by).matches()) {
            throw new KilnException(ExitCodes.USAGE, "'" + by + "' is not a duration such as 30m, 1h or 1h30m");
        }
        return run("extend", "--", id, by);
    }

    Outcome stop(String id) {
        instance(id);
        return run("stop", "--reason", "kiln ui", "--", id);
    }

    Outcome stopAll() {
        return run("stop", "--all", "--reason", "kiln ui: stop all");
    }

    /** `kiln launch --role TEMPLATE` with the template's declared labels set from the form. */
    Outcome launch(String template, Map<String, String> labels, String ttl) {
        Map<String, String> declared = templates().get(template);
        if (declared == null) {
            throw new KilnException(ExitCodes.USAGE, "'" + template + "' is not a template in " + context.paths().configFile());
        }
        List<String> args = new ArrayList<>(List.of("launch", "--role", template));
        for (Map.Entry<String, String> l : labels.entrySet()) {
            if (!declared.containsKey(l.getKey())) {
                throw new KilnException(ExitCodes.USAGE, "template '" + template + "' declares no label '" + l.getKey() + "'");
            }
            args.add("--label");
            args.add(l.getKey() + "=" + l.getValue());
        }
        if (ttl != null && !ttl.isEmpty()) {
            if (!DURATION.matcher(ttl).matches()) {
                throw new KilnException(ExitCodes.USAGE, "lease '" + ttl + "' is not a duration such as 30m, 1h or 1h30m");
            }
            args.add("--ttl");
            args.add(ttl);
        }
        return run(args.toArray(String[]::new));
    }

    /**
     * Runs a kiln command line as the CLI does (its own context, same environment and settings),
     * its narration also on this process's stderr.
     */
    Outcome run(String... args) {
        CliEnvironment env = context.env();
        Map<String, String> vars = new HashMap<>(env.env());
        vars.putAll(overrides);
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        int code;
        try (PrintStream o = new PrintStream(out, true, StandardCharsets.UTF_8);
             PrintStream e = new PrintStream(new Tee(err, env.err()), true, StandardCharsets.UTF_8)) {
            code = KilnCli.run(new CliEnvironment(vars, env.home(), o, e), args);
        }
        return new Outcome(code, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
    }

    /** Writes to two streams. */
    private static final class Tee extends OutputStream {
        private final OutputStream a;
        private final OutputStream b;

        Tee(OutputStream a, OutputStream b) {
            this.a = a;
            this.b = b;
        }

        @Override
        public void write(int c) throws java.io.IOException {
            a.write(c);
            b.write(c);
        }

        @Override
        public void write(byte[] buf, int off, int len) throws java.io.IOException {
            a.write(buf, off, len);
            b.write(buf, off, len);
        }

        @Override
        public void flush() throws java.io.IOException {
            a.flush();
            b.flush();
        }
    }

    Instant now() {
        return context.clock().instant();
    }

    Context context() {
        return context;
    }

    @Override
    public void close() {
        pool.shutdownNow();
    }
}
