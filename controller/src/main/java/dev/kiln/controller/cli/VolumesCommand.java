package dev.kiln.controller.cli;

import dev.kiln.controller.client.AgentClient;
import dev.kiln.controller.fleet.StoredVolume;
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
                "Boot-time mounts that failed are reported on stderr.",
                "--fleet lists the fleet's volumes instead (attached or not), e.g. `kiln volumes --fleet --provider ec2`."})
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

    @Mixin
    FleetMixin fleetOptions;

    @Option(names = "--fleet", description = "List the fleet's volumes instead (of the provider, attached or not): id, role,"
            + " size, state (in use by INSTANCE, or available), created, and whether it is kept or unsaved.")
    boolean fleet;

    @Override
    public void run() {
        OutputFormat format = output.format(context.settings());
        if (fleet) {
            printFleet(format, fleetOptions.fleet(fleets).storedVolumes());
            return;
        }
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

    /** The fleet's volumes as a table (wide: with why each unsaved one is), or JSON. */
    private void printFleet(OutputFormat format, java.util.List<StoredVolume> vols) {
        if (format == OutputFormat.json) {
            com.google.gson.JsonArray a = new com.google.gson.JsonArray();
            for (StoredVolume v : vols) {
                com.google.gson.JsonObject o = new com.google.gson.JsonObject();
                o.addProperty("id", v.id());
                o.addProperty("role", v.role());
                o.addProperty("size_gib", v.sizeGiB());
                o.addProperty("state", v.inUseBy() == null ? "available" : "in-use");
                o.add("instance", Json.text(v.inUseBy()));
                o.add("created", Json.time(v.created()));
                o.addProperty("kept", v.kept());
                o.addProperty("unsaved", !v.unsaved().isEmpty());
                o.add("unsaved_reason", Json.text(v.unsaved().isEmpty() ? null : v.unsaved()));
                o.addProperty("kiln", v.kilns());
                a.add(o);
            }
            Json.print(context.out(), a);
            return;
        }
        boolean wide = format == OutputFormat.wide;
        Table t = wide ? new Table("VOLUME", "ROLE", "SIZE", "STATE", "CREATED", "KEPT", "WHY")
                : new Table("VOLUME", "ROLE", "SIZE", "STATE", "CREATED", "KEPT");
        for (StoredVolume v : vols) {
            String created = v.created() == null ? "-" : v.created().truncatedTo(java.time.temporal.ChronoUnit.SECONDS).toString();
            String size = v.sizeGiB() == 0 ? "-" : v.sizeGiB() + "G";
            if (wide) {
                t.row(v.id(), v.role().isEmpty() ? "-" : v.role(), size, v.state(), created, v.fate(),
                        v.unsaved().isEmpty() ? "-" : v.unsaved());
            } else {
                t.row(v.id(), v.role().isEmpty() ? "-" : v.role(), size, v.state(), created, v.fate());
            }
        }
        t.print(context.out());
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
