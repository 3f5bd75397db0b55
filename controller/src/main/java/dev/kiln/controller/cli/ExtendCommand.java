package dev.kiln.controller.cli;

import com.google.protobuf.Timestamp;
import dev.kiln.controller.ExitCodes;
import dev.kiln.controller.KilnException;
import dev.kiln.controller.fleet.Fleet;
import dev.kiln.proto.agent.v1.ExtendLeaseRequest;
import dev.kiln.proto.agent.v1.Lease;
import jakarta.inject.Inject;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.time.Duration;
import java.time.Instant;
import java.time.format.DateTimeParseException;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.Callable;

/** {@code kiln extend}: move agents' deadlines later. */
@Command(name = "extend", mixinStandardHelpOptions = true,
        description = {"Move the lease deadline later: by DURATION (e.g. 1h) from the current deadline, or to",
                "--until TIME (ISO-8601, e.g. 2026-11-22T18:00:00Z), which must be in the future; a deadline",
                "already later stays. Capped by the agent's maximum lifetime; safe to repeat (each run",
                "carries its own request id). Acts on INSTANCE (an instance id: local-... on the local",
                "provider, i-... on EC2), on every running managed instance (--all), or on --agent / the",
                "local agent. Examples:",
                "  kiln extend 1h",
                "  kiln extend local-1a2b3c4d 30m",
                "  kiln extend i-0abc1234def567890 --until 2026-11-22T18:00:00Z",
                "  kiln extend --all 1h"})
public class ExtendCommand implements Callable<Integer> {

    @Inject
    Context context;

    @Inject
    Fleets fleets;

    @Inject
    AgentClients clients;

    @Mixin
    AgentMixin agent;

    @Mixin
    FleetMixin fleetOptions;

    @Parameters(arity = "0..2", paramLabel = "[INSTANCE] [DURATION]",
            description = "An instance id (optional: local-... or i-...) and how much later, e.g. 30m, 1h (or --until).")
    List<String> words = new ArrayList<>();

    @Option(names = "--until", paramLabel = "TIME", description = "The new deadline (ISO-8601 UTC).")
    String until;

    @Option(names = "--all", description = "Every running managed instance (of the provider).")
    boolean all;

    @Mixin
    TimeoutMixin timeout;

    @Override
    public Integer call() {
        String instance = null;
        String by = null;
        if (words.size() == 2) {
            instance = words.get(0);
            by = words.get(1);
        } else if (words.size() == 1) {
            if (AgentMixin.isInstanceId(words.get(0))) {
                instance = words.get(0);
            } else {
                by = words.get(0);
            }
        }
        if (words.size() == 2 && !AgentMixin.isInstanceId(instance)) {
            throw new KilnException(ExitCodes.USAGE, "'" + instance + "' is not an instance id (local-... or i-...; see `kiln ls`)");
        }
        if (by != null && until != null) {
            throw new KilnException(ExitCodes.USAGE, "give a DURATION or --until TIME, not both (e.g. `kiln extend "
                    + (instance == null ? "" : instance + " ") + "1h`)");
        }
        if (by == null && until == null) {
            throw new KilnException(ExitCodes.USAGE, "say how much later: a DURATION (e.g. `kiln extend "
                    + (instance == null ? "" : instance + " ") + "1h`) or --until TIME");
        }
        ExtendLeaseRequest.Builder req = ExtendLeaseRequest.newBuilder();
        if (by != null) {
            Duration d = Durations.parse(by);
            req.setBy(com.google.protobuf.Duration.newBuilder().setSeconds(d.getSeconds()).setNanos(d.getNano()));
        } else {
            Instant t;
            try {
                t = Instant.parse(until);
            } catch (DateTimeParseException e) {
                throw new KilnException(ExitCodes.USAGE, "--until '" + until + "' is not an ISO-8601 time such as 2026-11-22T18:00:00Z");
            }
            if (!t.isAfter(Instant.now())) {
                throw new KilnException(ExitCodes.USAGE, "--until " + until + " is in the past (it is now "
                        + Instant.now().truncatedTo(ChronoUnit.SECONDS) + "); give a later time, or end the instance now with `kiln stop"
                        + (instance == null ? "" : " " + instance) + "`");
            }
            req.setUntil(Timestamp.newBuilder().setSeconds(t.getEpochSecond()).setNanos(t.getNano()));
        }
        List<Targets.Target> targets = Targets.resolve(context, fleets, agent, fleetOptions, instance, all);
        boolean named = targets.size() > 1 || instance != null;
        // Fleet targets are named by instance id; an agent reached by --agent has no fleet record.
        Fleet fleet = instance != null || all ? fleetOptions.fleet(fleets, instance) : null;
        return Targets.each(context, clients, targets, timeout.get(context), (t, client) -> {
            if (client.status().getLease().getForever()) {
                // An always-on instance (--forever) has no deadline to move: nothing to do, and nothing wrong.
                context.out().println((named ? t.name() + ": " : "") + "no deadline (launched with --forever); nothing"
                        + " changed: it runs until `kiln stop` or `kiln terminate`");
                return;
            }
            Lease lease = client.stub().extendLease(req.setRequestId(UUID.randomUUID().toString()).build());
            if (fleet != null && lease.hasDeadline()) {
                recordDeadline(fleet, t.name(), lease);
            }
            if (req.hasUntil() && lease.getDeadline().getSeconds() > req.getUntil().getSeconds()) {
                context.err().println("kiln: " + (named ? t.name() + ": " : "") + "the deadline was already later than " + until
                        + " and stays (extend never moves it earlier; `kiln stop` ends an instance now)");
            }
            context.out().println((named ? t.name() + ": " : "") + "deadline "
                    + StatusCommand.time(lease.getDeadline()) + " (in "
                    + Durations.format(Duration.ofSeconds(lease.getRemaining().getSeconds())) + "; at most until "
                    + StatusCommand.time(lease.getMaxDeadline()) + ")");
        });
    }

    /**
     * Moves the fleet's record of the deadline (kiln:expires-at) to what the agent accepted, so that
     * `kiln reap` does not take an extended instance for an expired one. A failure here leaves the
     * extension in force: it is reported, and reap still asks a reachable agent before it trusts the tag.
     */
    private void recordDeadline(Fleet fleet, String id, Lease lease) {
        Instant deadline = Instant.ofEpochSecond(lease.getDeadline().getSeconds(), lease.getDeadline().getNanos());
        try {
            fleet.recordDeadline(id, deadline);
        } catch (KilnException e) {
            context.err().println("kiln: " + id + ": the agent's deadline moved, but its kiln:expires-at record did not: "
                    + e.getMessage() + " (`kiln reap` asks the agent before it trusts the record)");
        }
    }
}
