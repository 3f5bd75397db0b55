import dev.kiln.controller.client.AgentClient;
import dev.kiln.controller.client.AgentEndpoint;
import dev.kiln.controller.client.ClientTls;
import dev.kiln.controller.config.CliEnvironment;
import dev.kiln.controller.config.KilnPaths;
import dev.kiln.controller.local.LocalProvider;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;

/**
 * The status fan-out of `kiln ls` (LsCommand.rows: a pool of min(16, N) threads, one AgentClient,
 * i.e. one channel and TLS handshake, per target, one TLS context for all, 3 s timeout;
 * FANOUT_TLS=per-call builds a TLS context per target, as LsCommand did before) against N targets that are all the
 * same local agent (or round-robin over a comma-separated list of agents, or over the local
 * fleet's running instances as `kiln ls` finds them: "fleet"), or the same N status calls one
 * after another. Prints the fan-out's milliseconds.
 * Usage: java -cp kiln.jar:DIR Fanout parallel|sequential N HOST:PORT[,HOST:PORT...]|fleet
 */
public class Fanout {
    public static void main(String[] args) throws Exception {
        boolean parallel = args[0].equals("parallel");
        int n = Integer.parseInt(args[1]);
        List<AgentEndpoint> targets = new ArrayList<>();
        if (args[2].equals("fleet")) {
            // Where `kiln ls` finds them: the local fleet's running instances, by their records.
            for (var m : new LocalProvider(KilnPaths.from(CliEnvironment.system())).observeOnly().list(List.of())) {
                targets.add(m.endpoint("auto"));
            }
        } else {
            for (String a : args[2].split(",")) {
                targets.add(AgentEndpoint.parse(a));
            }
        }
        boolean shared = !"per-call".equals(System.getenv("FANOUT_TLS"));
        ClientTls material = ClientTls.of(KilnPaths.from(CliEnvironment.system()));
        io.netty.handler.ssl.SslContext sharedContext = shared ? material.sslContext() : null;
        java.util.function.Supplier<io.netty.handler.ssl.SslContext> tls = () -> shared ? sharedContext : material.sslContext();
        // kiln ls's default; FANOUT_TIMEOUT=SECONDS gives the sequential alternative room on a loaded machine.
        Duration timeout = Duration.ofSeconds(Long.parseLong(System.getenv().getOrDefault("FANOUT_TIMEOUT", "3")));
        long t0 = System.nanoTime();
        int ok = 0;
        if (parallel) {
            ExecutorService pool = Executors.newFixedThreadPool(Math.max(1, Math.min(16, n)));
            List<CompletableFuture<Boolean>> fs = new ArrayList<>();
            for (int i = 0; i < n; i++) {
                AgentEndpoint e = targets.get(i % targets.size());
                fs.add(CompletableFuture.supplyAsync(() -> {
                    try (AgentClient c = new AgentClient(e, tls.get(), timeout)) {
                        return c.status() != null;
                    }
                }, pool));
            }
            for (CompletableFuture<Boolean> f : fs) {
                // Each call has its own 3 s deadline; this bound only keeps a wedged channel from
                // holding the benchmark forever.
                ok += f.get(timeout.toSeconds() + 30, java.util.concurrent.TimeUnit.SECONDS) ? 1 : 0;
            }
            pool.shutdownNow();
        } else {
            for (int i = 0; i < n; i++) {
                try (AgentClient c = new AgentClient(targets.get(i % targets.size()), tls.get(), timeout)) {
                    ok += c.status() != null ? 1 : 0;
                }
            }
        }
        long ms = (System.nanoTime() - t0) / 1_000_000;
        if (ok != n) {
            throw new IllegalStateException(ok + " of " + n + " status calls answered");
        }
        System.out.println(ms);
        // As kiln's Main does: stop the event loops, so the JVM's exit does not wait for them.
        dev.kiln.controller.client.ClientEventLoops.shutdown();
    }
}
