package dev.kiln.controller.cli;

import dev.kiln.controller.client.AgentClient;
import dev.kiln.proto.agent.v1.ThawRequest;
import dev.kiln.proto.agent.v1.ThawResponse;
import jakarta.inject.Inject;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/** {@code kiln thaw}: thaw a frozen volume now. */
@Command(name = "thaw", mixinStandardHelpOptions = true,
        description = "Thaw a frozen volume now. Not frozen: nothing to do (exit 0).")
public class ThawCommand implements Runnable {

    @Inject
    Context context;

    @Inject
    AgentClients clients;

    @Mixin
    AgentMixin agent;

    @Parameters(index = "0", paramLabel = "MOUNT_POINT", description = "The mount point.")
    String mountPoint;

    @Mixin
    TimeoutMixin timeout;

    @Override
    public void run() {
        ThawResponse r;
        try (AgentClient client = clients.connect(agent, timeout.get(context))) {
            r = client.stub().thaw(ThawRequest.newBuilder().setMountPoint(mountPoint).build());
        }
        context.err().println(r.getWasFrozen() ? "kiln: thawed " + mountPoint : "kiln: " + mountPoint + " was not frozen; nothing to do");
    }
}
