package dev.kiln.controller.cli;

import com.google.protobuf.Timestamp;
import dev.kiln.controller.ExitCodes;
import dev.kiln.controller.KilnException;
import dev.kiln.controller.client.AgentClient;
import dev.kiln.controller.client.GrpcErrors;
import dev.kiln.proto.agent.v1.ExtendLeaseRequest;
import dev.kiln.proto.agent.v1.Lease;
import io.grpc.StatusRuntimeException;
import jakarta.inject.Inject;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.time.Duration;
import java.time.Instant;
import java.time.format.DateTimeParseException;
import java.util.UUID;

/** {@code kiln extend}: move an agent's deadline later. */
@Command(name = "extend", mixinStandardHelpOptions = true,
        description = {"Move the agent's lease deadline later: by DURATION (e.g. 1h) from the current deadline,",
                "or to --until TIME (ISO-8601, e.g. 2026-11-22T18:00:00Z). Capped by the agent's maximum lifetime;",
                "safe to repeat (each run carries its own request id)."})
public class ExtendCommand implements Runnable {

    @Inject
    Context context;

    @Mixin
    AgentMixin agent;

    @Parameters(index = "0", arity = "0..1", paramLabel = "DURATION", description = "How much later, e.g. 30m, 1h, 1h30m.")
    String by;

    @Option(names = "--until", paramLabel = "TIME", description = "The new deadline (ISO-8601 UTC).")
    String until;

    @Option(names = "--timeout", paramLabel = "DURATION", description = "Request timeout (default: 10s).")
    String timeout;

    @Override
    public void run() {
        if ((by == null) == (until == null)) {
            throw new KilnException(ExitCodes.USAGE, "give either a DURATION (e.g. `kiln extend 1h`) or --until TIME");
        }
        ExtendLeaseRequest.Builder req = ExtendLeaseRequest.newBuilder().setRequestId(UUID.randomUUID().toString());
        if (by != null) {
            Duration d = Durations.parse(by);
            req.setBy(com.google.protobuf.Duration.newBuilder().setSeconds(d.getSeconds()).setNanos(d.getNano()));
        } else {
            try {
                Instant t = Instant.parse(until);
                req.setUntil(Timestamp.newBuilder().setSeconds(t.getEpochSecond()).setNanos(t.getNano()));
            } catch (DateTimeParseException e) {
                throw new KilnException(ExitCodes.USAGE, "--until '" + until + "' is not an ISO-8601 time such as 2026-11-22T18:00:00Z");
            }
        }
        Lease lease;
        try (AgentClient client = context.connect(agent, context.timeout(timeout))) {
            try {
                lease = client.stub().extendLease(req.build());
            } catch (StatusRuntimeException e) {
                throw GrpcErrors.translate(e, client.endpoint());
            }
        }
        context.out().println("deadline " + StatusCommand.time(lease.getDeadline()) + " (in "
                + Durations.format(Duration.ofSeconds(lease.getRemaining().getSeconds())) + "; at most until "
                + StatusCommand.time(lease.getMaxDeadline()) + ")");
    }
}
