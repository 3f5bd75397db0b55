package dev.kiln.controller.cli;

import dev.kiln.controller.client.AgentClient;
import dev.kiln.proto.agent.v1.ListVolumesRequest;
import dev.kiln.proto.agent.v1.ListVolumesResponse;
import jakarta.inject.Inject;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** {@code kiln volumes}: the agent's block devices, their volume ids, filesystems, mounts and states. */
@Command(name = "volumes", mixinStandardHelpOptions = true,
        description = {"List the agent's block devices (of a local instance: its own volumes only): volume id, size,",
                "filesystem, mount point and state",
                "(mounted, mounted-ro, frozen, or for an unmounted device its format decision: blank, has-data, unknown).",
                "Boot-time mounts that failed are reported on stderr."})
public class VolumesCommand implements Runnable {

    @Inject
    Context context;

    @Inject
    Fleets fleets;

    @Inject
    AgentClients clients;

    @Mixin
    AgentMixin agent;

    @Mixin
    OutputMixin output;

    @Mixin
    TimeoutMixin timeout;

    @Override
    public void run() {
        OutputFormat format = output.format(context.settings());
        ListVolumesResponse list;
        try (AgentClient client = clients.connect(agent, timeout.get(context))) {
            list = client.stub().listVolumes(ListVolumesRequest.getDefaultInstance());
        }
        java.util.Optional<String> local = agent.localInstanceId(context.settings());
        if (local.isPresent()) {
            list = own(fleets.local().ownVolumes(local.get()), list);
        }
        for (String problem : list.getBootMountErrorsList()) {
            context.err().println("kiln: " + problem);
        }
        if (format == OutputFormat.json) {
            VolumeTable.json(context.out(), list);
            return;
        }
        VolumeTable.print(context.out(), format, list.getVolumesList());
    }

    /**
     * A local instance's own volumes out of what its agent lists (every block device of this
     * host, other users' loop devices included): its loop devices, named by their volume ids, and
     * its directory volumes, which are no block devices at all.
     */
    static ListVolumesResponse own(java.util.List<dev.kiln.controller.local.LocalProvider.OwnVolume> mine, ListVolumesResponse all) {
        ListVolumesResponse.Builder b = all.toBuilder().clearVolumes();
        for (var v : mine) {
            if (v.device() == null) {
                b.addVolumes(dev.kiln.proto.agent.v1.Volume.newBuilder().setDevice("(directory)").setVolumeId(v.id())
                        .setSizeBytes(v.sizeGiB() << 30).setFilesystem("dir").setLabel(v.role()).setMountPoint(v.path()));
                continue;
            }
            all.getVolumesList().stream().filter(d -> d.getDevice().equals(v.device())).findFirst()
                    .ifPresent(d -> b.addVolumes(d.toBuilder().setVolumeId(v.id())));
        }
        return b.build();
    }
}
