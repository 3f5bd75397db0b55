package dev.kiln.controller.cli;

import dev.kiln.controller.ExitCodes;
import dev.kiln.controller.KilnException;
import dev.kiln.controller.fleet.Ec2Fleet;
import dev.kiln.controller.client.AgentClient;
import dev.kiln.proto.agent.v1.MountRequest;
import dev.kiln.proto.agent.v1.MountResponse;
import dev.kiln.proto.agent.v1.Overlay;
import jakarta.inject.Inject;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.time.Duration;
import java.util.List;

/** {@code kiln mount}: mount a volume (formatting it only if provably blank and allowed), or an overlay work tree. */
@TimeoutMixin.Default(value = "--wait plus 10m", settings = false)
@Command(name = "mount", mixinStandardHelpOptions = true,
        description = {"Mount a volume on the agent: VOLUME is an EBS volume id (vol-...) or a device (/dev/...).",
                "A device is formatted only if it is provably blank and --format is given; anything else that is not",
                "the expected filesystem is refused and left untouched. Always nodev,nosuid.",
                "With --lower and --upper, mount an overlay work tree instead: the read-only sources under the",
                "writable outputs (kiln mount --lower /mnt/sources/vibes --upper /mnt/builds/vibes /srv/vibes).",
                "Already mounted as requested: nothing to do (exit 0)."})
public class MountCommand implements Runnable {

    @Inject
    Context context;

    @Inject
    AgentClients clients;

    @Mixin
    AgentMixin agent;

    @Mixin
    OutputMixin output;

    @Parameters(arity = "1..2", paramLabel = "[VOLUME] MOUNT_POINT",
            description = "The volume (vol-... or /dev/...) and the absolute mount point; only the mount point for an overlay.")
    List<String> args;

    @Option(names = "--device", paramLabel = "/dev/NAME",
            description = "A device name hint for VOLUME (e.g. /dev/sdf); refused if it leads to another volume.")
    String device;

    @Option(names = "--fs", paramLabel = "ext4|xfs", description = "The expected filesystem, or the one to create (default: ext4).")
    String filesystem;

    @Option(names = "--format", description = "Format the device if, and only if, it is provably blank.")
    boolean format;

    @Option(names = "--label", paramLabel = "LABEL", description = "Filesystem label when formatting (default: the mount point's name).")
    String label;

    @Option(names = "--ro", description = "Mount read-only.")
    boolean readOnly;

    @Option(names = "--noexec", description = "Mount noexec.")
    boolean noexec;

    @Option(names = "--noatime", description = "Mount noatime.")
    boolean noatime;

    @Option(names = "--lower", paramLabel = "DIR", description = "Overlay: the read-only lower layer (the sources).")
    String lower;

    @Option(names = "--upper", paramLabel = "DIR", description = "Overlay: the writable upper layer (outputs, build database).")
    String upper;

    @Option(names = "--wait", paramLabel = "DURATION",
            description = "How long the agent waits for a volume that is not attached yet (default: the agent's, 2m).")
    String waitFor;

    @Mixin
    TimeoutMixin timeout;

    @Inject
    Fleets fleets;

    /**
     * Before an EC2 volume is mounted writable on an instance named by its id, its kiln:access tag
     * says so: that tag is what lets its fate, when the instance ends, call it never written.
     */
    private void markWritable(String volumeId) {
        String target = context.settings().get("agent", agent.agent).orElse("");
        if (Ec2Fleet.isInstanceId(target) && volumeId.startsWith("vol-")) {
            fleets.ec2().markWritable(volumeId);
        }
    }

    @Override
    public void run() {
        boolean overlay = lower != null || upper != null;
        String mountPoint = args.get(args.size() - 1);
        MountRequest.Builder b = MountRequest.newBuilder().setMountPoint(mountPoint)
                .setReadOnly(readOnly).setNoexec(noexec).setNoatime(noatime).setAllowFormat(format);
        if (overlay) {
            if (args.size() != 1) {
                throw new KilnException(ExitCodes.USAGE, "an overlay takes only the mount point: kiln mount --lower DIR --upper DIR MOUNT_POINT");
            }
            if (lower == null || upper == null) {
                throw new KilnException(ExitCodes.USAGE, "an overlay needs both --lower (the sources) and --upper (the outputs)");
            }
            b.setOverlay(Overlay.newBuilder().setLowerDir(lower).setUpperDir(upper));
        } else {
            if (args.size() != 2) {
                throw new KilnException(ExitCodes.USAGE, "give the volume and the mount point: kiln mount vol-0123... /mnt/data"
                        + " (or kiln mount /dev/loop3 /mnt/data)");
            }
            String volume = args.get(0);
            if (volume.startsWith("/dev/")) {
                if (device != null) {
                    throw new KilnException(ExitCodes.USAGE, "--device is a hint for a volume id; " + volume + " is already a device");
                }
                b.setDeviceHint(volume);
            } else {
                b.setVolumeId(volume);
                if (device != null) {
                    b.setDeviceHint(device);
                }
                if (!readOnly) {
                    markWritable(volume);
                }
            }
        }
        if (filesystem != null) {
            b.setFilesystem(filesystem);
        }
        if (label != null) {
            b.setLabel(label);
        }
        Duration wait = null;
        if (waitFor != null) {
            wait = Durations.parse(waitFor);
            b.setWait(com.google.protobuf.Duration.newBuilder().setSeconds(wait.getSeconds()).setNanos(wait.getNano()));
        }
        Duration waited = wait;
        Duration deadline = timeout.given()
                .orElseGet(() -> (waited == null ? Duration.ofMinutes(2) : waited).plus(Duration.ofMinutes(10)));
        OutputFormat out = output.format(context.settings());
        MountResponse r;
        try (AgentClient client = clients.connect(agent, deadline)) {
            if (!overlay && !format) {
                context.err().println("kiln: mounting " + args.get(0) + " at " + mountPoint + " (a blank device would not be formatted)");
            } else if (!overlay) {
                context.err().println("kiln: mounting " + args.get(0) + " at " + mountPoint + " (formatting it only if it is provably blank)");
            }
            r = client.stub().mount(b.build());
        }
        if (r.getAlreadyMounted()) {
            context.err().println("kiln: " + mountPoint + " was already mounted as requested; nothing to do");
        } else {
            if (r.getFormatted()) {
                context.err().println("kiln: formatted " + r.getVolume().getDevice() + " as " + r.getVolume().getFilesystem()
                        + " (it was blank)");
            }
            context.err().println("kiln: mounted " + (overlay ? "an overlay work tree" : r.getVolume().getDevice()) + " at "
                    + mountPoint + " (" + String.join(",", r.getVolume().getMountOptionsList()) + ")");
            if (r.getGrown()) {
                context.err().println("kiln: grew the filesystem to fill the enlarged volume");
            }
        }
        if (out == OutputFormat.json) {
            VolumeTable.json(context.out(), r);
        } else {
            VolumeTable.print(context.out(), out, List.of(r.getVolume()));
        }
    }
}
