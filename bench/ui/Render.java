package dev.kiln.controller.ui;

import dev.kiln.controller.fleet.ManagedInstance;
import dev.kiln.proto.agent.v1.AgentState;
import dev.kiln.proto.agent.v1.Build;
import dev.kiln.proto.agent.v1.BuildState;
import dev.kiln.proto.agent.v1.Lease;
import dev.kiln.proto.agent.v1.Progress;
import dev.kiln.proto.agent.v1.Service;
import dev.kiln.proto.agent.v1.ServiceState;
import dev.kiln.proto.agent.v1.StatusResponse;

import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * The dashboard's fleet table for N instances whose statuses have arrived (labels, a running
 * build, a lease, two services each): how long the server takes to render the rows, in a fresh
 * JVM the first time and once warm. Usage: Render N ROUNDS; prints "first_ms warm_median_ms bytes".
 * In package dev.kiln.controller.ui for Html, which is package-private.
 */
public final class Render {

    public static void main(String[] args) {
        int n = Integer.parseInt(args[0]);
        int rounds = Integer.parseInt(args[1]);
        Instant now = Instant.now();
        List<Dashboard.Row> rows = rows(n, now);
        long t0 = System.nanoTime();
        int bytes = Html.rows(rows, now).length();
        double first = (System.nanoTime() - t0) / 1e6;
        double[] warm = new double[rounds];
        for (int r = 0; r < rounds; r++) {
            long t = System.nanoTime();
            Html.rows(rows, now);
            warm[r] = (System.nanoTime() - t) / 1e6;
        }
        java.util.Arrays.sort(warm);
        System.out.printf("%.3f %.3f %d%n", first, warm[rounds / 2], bytes);
    }

    /** N instances whose statuses have arrived: labels, a running build with progress, a lease, two services each. */
    static List<Dashboard.Row> rows(int n, Instant now) {
        List<Dashboard.Row> rows = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            String id = String.format("local-%08x", i);
            ManagedInstance m = new ManagedInstance(id, "preview", Map.of("pr", Integer.toString(3000 + i), "branch", "feature-" + i),
                    "running", "127.0.0.1", null, now.plusSeconds(3600), id, 40000 + i, now);
            StatusResponse s = StatusResponse.newBuilder().setState(AgentState.AGENT_STATE_READY)
                    .setLease(Lease.newBuilder().setDeadline(com.google.protobuf.Timestamp.newBuilder().setSeconds(now.getEpochSecond() + 3600)))
                    .setCurrentBuild(Build.newBuilder().setId("b-20261207-1200" + i).setState(BuildState.BUILD_STATE_RUNNING)
                            .setProgress(Progress.newBuilder().setDone(i).setTotal(100)))
                    .addServices(Service.newBuilder().setName("web").setPort(8000).setPath("/").setCommand("run web")
                            .setState(ServiceState.SERVICE_STATE_RUNNING))
                    .addServices(Service.newBuilder().setName("api").setPort(9000).setPath("/docs")
                            .setState(ServiceState.SERVICE_STATE_RUNNING))
                    .putLabels("title", "<b>Fix the login page</b> & more")
                    .build();
            rows.add(new Dashboard.Row(m, m.endpoint("auto"), s, null));
        }
        return rows;
    }
}
