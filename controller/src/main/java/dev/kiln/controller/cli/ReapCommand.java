package dev.kiln.controller.cli;

import dev.kiln.controller.KilnException;
import dev.kiln.controller.client.AgentClient;
import dev.kiln.controller.client.AgentEndpoint;
import dev.kiln.controller.fleet.Fleet;
import dev.kiln.controller.fleet.ManagedInstance;
import dev.kiln.proto.agent.v1.Lease;
import dev.kiln.proto.agent.v1.StatusResponse;
import jakarta.inject.Inject;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/** {@code kiln reap}: the controller-side backstop. */
@TimeoutMixin.Default(what = "How long to wait for each agent's answer")
@Command(name = "reap", mixinStandardHelpOptions = true,
        description = {"Terminate managed instances whose kiln:expires-at passed more than --grace ago",
                "(their agents and backstop timers should have ended them; this is the last resort). Run it from cron.",
                "An instance whose agent answers is asked first: it is terminated only when the agent's own deadline",
                "passed more than --grace ago; otherwise it is kept and its kiln:expires-at is set to that deadline.",
                "An instance whose agent does not answer (within --timeout) is judged by its kiln:expires-at.",
                "Then the volumes whose instance is gone: deleted when their data is safe, else kept and flagged unsaved."})
public class ReapCommand implements Runnable {

    @Inject
    Context context;

    @Inject
    Fleets fleets;

    @Inject
    AgentClients clients;

    @Mixin
    FleetMixin fleetOptions;

    @Option(names = "--grace", defaultValue = "30m", description = "How long past expiry before reaping (default: ${DEFAULT-VALUE}).")
    String grace;

    @Option(names = "--dry-run", description = "Only list what would be terminated.")
    boolean dryRun;

    @Mixin
    TimeoutMixin timeout;

    /**
     * What reap does with one instance whose tag says it expired.
     *
     * @param terminate     whether it ends
     * @param agentDeadline the deadline its agent reported, or null when the agent did not answer
     *                      (or has no deadline)
     * @param why           the reason, for the ACTION column
     */
    record Verdict(boolean terminate, Instant agentDeadline, String why) {
    }

    /**
     * The decision: a reachable agent's own deadline overrides the tag; the tag alone decides only
     * for an agent that does not answer.
     *
     * @param agent the agent's Status, or empty when it did not answer
     */
    static Verdict judge(Optional<StatusResponse> agent, Instant now, Duration grace) {
        if (agent.isEmpty()) {
            return new Verdict(true, null, "agent unreachable");
        }
        Lease lease = agent.get().getLease();
        if (lease.getForever() || !lease.hasDeadline()) {
            return new Verdict(false, null, "its agent has no deadline");
        }
        Instant deadline = Instant.ofEpochSecond(lease.getDeadline().getSeconds(), lease.getDeadline().getNanos());
        if (deadline.plus(grace).isBefore(now)) {
            return new Verdict(true, deadline, "its agent's deadline " + deadline + " passed");
        }
        return new Verdict(false, deadline, "its agent's deadline is " + deadline);
    }

    @Override
    public void run() {
        Fleet fleet = fleetOptions.fleet(fleets);
        Instant now = Instant.now();
        Duration graceTime = Durations.parse(grace);
        List<ManagedInstance> expired = fleet.expired(now, graceTime);
        Table t = new Table("INSTANCE", "ROLE", "EXPIRED-AT", "ACTION");
        List<String> ending = new ArrayList<>();
        int kept = 0;
        for (ManagedInstance m : expired) {
            Verdict v = judge(ask(m), now, graceTime);
            if (v.terminate()) {
                ending.add(m.id());
            } else {
                kept++;
                if (v.agentDeadline() != null && !dryRun) {
                    follow(fleet, m, v.agentDeadline());
                }
            }
            String action = v.terminate() ? (dryRun ? "would terminate" : "terminated") : (dryRun ? "would keep" : "kept");
            t.row(m.id(), m.role(), String.valueOf(m.expiresAt()), action + " (" + v.why() + ")");
        }
        if (!dryRun) {
            fleet.terminate(ending, "reaped by kiln reap (its lease had passed and its agent had not ended it)");
        }
        t.print(context.out());
        // Then the volumes whose instance is gone, by the data-safe rule.
        fleet.reapVolumes(dryRun).forEach(line -> context.err().println("kiln: " + line));
        context.err().println("kiln: " + ending.size() + " expired instance" + (ending.size() == 1 ? "" : "s")
                + (dryRun ? " found" : " terminated") + (kept == 0 ? "" : "; " + kept + " kept by "
                + (kept == 1 ? "its agent" : "their agents")));
    }

    /** The agent's Status, or empty when it has no usable address or does not answer. */
    private Optional<StatusResponse> ask(ManagedInstance m) {
        AgentEndpoint endpoint = fleetOptions.endpoint(context, m);
        if (endpoint == null) {
            return Optional.empty();
        }
        try (AgentClient client = clients.client(endpoint, timeout.get(context))) {
            return Optional.of(client.status());
        } catch (KilnException e) {
            context.err().println("kiln: " + m.id() + ": its agent does not answer (" + e.getMessage() + ")");
            return Optional.empty();
        }
    }

    /** Sets the instance's tag to the deadline its agent holds, so that the next reap need not ask. */
    private void follow(Fleet fleet, ManagedInstance m, Instant deadline) {
        try {
            fleet.recordDeadline(m.id(), deadline);
        } catch (KilnException e) {
            context.err().println("kiln: " + m.id() + ": kept, but its kiln:expires-at could not follow its agent's deadline: "
                    + e.getMessage());
        }
    }
}
