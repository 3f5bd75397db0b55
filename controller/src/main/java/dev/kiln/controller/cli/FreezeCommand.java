package dev.kiln.controller.cli;

import dev.kiln.controller.client.AgentClient;
import dev.kiln.proto.agent.v1.FreezeRequest;
import dev.kiln.proto.agent.v1.FreezeResponse;
import jakarta.inject.Inject;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.time.Duration;
import java.time.Instant;

/** {@code kiln freeze}: freeze a mounted volume for a snapshot, under a lease. */
@TimeoutMixin.Default(value = "5m", settings = false, why = "freezing flushes the filesystem")
@Command(name = "freeze", mixinStandardHelpOptions = true,
        description = {"Freeze a volume the agent mounted, for a consistent snapshot. The agent thaws it by itself when",
                "the lease runs out (default 30s), even if this command or its caller is gone; `kiln thaw` thaws",
                "it now. Freezing it again extends the lease. Prints the time by which it will be thawed."})
public class FreezeCommand implements Runnable {

    @Inject
    Context context;

    @Inject
    AgentClients clients;

    @Mixin
    AgentMixin agent;

    @Parameters(index = "0", paramLabel = "MOUNT_POINT", description = "The mount point.")
    String mountPoint;

    @Option(names = "--lease", paramLabel = "DURATION", description = "How long the freeze may last (default: the agent's, 30s).")
    String lease;

    @Option(names = "--request-id", paramLabel = "ID", description = "Makes a retry safe: a repeat returns the first answer.")
    String requestId;

    @Mixin
    TimeoutMixin timeout;

    @Override
    public void run() {
        FreezeRequest.Builder b = FreezeRequest.newBuilder().setMountPoint(mountPoint);
        if (lease != null) {
            Duration l = Durations.parse(lease);
            b.setLease(com.google.protobuf.Duration.newBuilder().setSeconds(l.getSeconds()).setNanos(l.getNano()));
        }
        if (requestId != null) {
            b.setRequestId(requestId);
        }
        FreezeResponse r;
        try (AgentClient client = clients.connect(agent, timeout.get(context))) {
            r = client.stub().freeze(b.build());
        }
        Instant thawBy = Instant.ofEpochSecond(r.getThawBy().getSeconds(), r.getThawBy().getNanos());
        context.err().println("kiln: froze " + mountPoint + "; the agent thaws it by " + thawBy
                + " at the latest (kiln thaw " + mountPoint + " thaws it now)");
        context.out().println(thawBy);
    }
}
