package dev.kiln.controller.cli;

import dev.kiln.controller.client.AgentClient;
import dev.kiln.proto.agent.v1.UnmountRequest;
import dev.kiln.proto.agent.v1.UnmountResponse;
import jakarta.inject.Inject;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.time.Duration;

/** {@code kiln unmount}: stop what uses a mount, then unmount it; never lazily, never forced. */
@TimeoutMixin.Default(value = "5m", settings = false)
@Command(name = "unmount", mixinStandardHelpOptions = true,
        description = {"Unmount a mount the agent made: cancel builds in it, TERM then (after --grace) KILL the",
                "processes still holding files on it, sync, unmount, and confirm. Never lazy, never forced: if it",
                "stays busy it stays mounted, and the error names the processes. Not mounted: nothing to do (exit 0)."})
public class UnmountCommand implements Runnable {

    @Inject
    Context context;

    @Inject
    AgentClients clients;

    @Mixin
    AgentMixin agent;

    @Mixin
    OutputMixin output;

    @Parameters(index = "0", paramLabel = "MOUNT_POINT", description = "The mount point.")
    String mountPoint;

    @Option(names = "--grace", paramLabel = "DURATION", description = "Time between TERM and KILL (default: the agent's, 10s).")
    String grace;

    @Mixin
    TimeoutMixin timeout;

    @Override
    public void run() {
        UnmountRequest.Builder b = UnmountRequest.newBuilder().setMountPoint(mountPoint);
        if (grace != null) {
            Duration g = Durations.parse(grace);
            b.setGrace(com.google.protobuf.Duration.newBuilder().setSeconds(g.getSeconds()).setNanos(g.getNano()));
        }
        OutputFormat format = output.format(context.settings());
        UnmountResponse r;
        try (AgentClient client = clients.connect(agent, timeout.get(context))) {
            r = client.stub().unmount(b.build());
        }
        for (String s : r.getStoppedProcessesList()) {
            context.err().println("kiln: stopped " + s);
        }
        context.err().println(r.getWasMounted() ? "kiln: unmounted " + mountPoint
                : "kiln: " + mountPoint + " was not mounted; nothing to do");
        if (format == OutputFormat.json) {
            VolumeTable.json(context.out(), r);
        }
    }
}
