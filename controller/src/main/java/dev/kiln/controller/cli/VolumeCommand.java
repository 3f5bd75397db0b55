package dev.kiln.controller.cli;

import dev.kiln.controller.fleet.Fleet;
import dev.kiln.controller.local.LocalProvider;
import jakarta.inject.Inject;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/** {@code kiln volume}: one volume of the fleet ({@code kiln volume rm}). */
@Command(name = "volume", mixinStandardHelpOptions = true,
        description = {"Act on one volume of the fleet (`kiln volumes --fleet` lists them)."},
        subcommands = VolumeCommand.Rm.class)
public class VolumeCommand implements Runnable {

    @picocli.CommandLine.Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @Override
    public void run() {
        throw new picocli.CommandLine.ParameterException(spec.commandLine(), "say what to do: kiln volume rm VOLUME_ID");
    }

    /** {@code kiln volume rm}: deletes an available volume. */
    @Command(name = "rm", mixinStandardHelpOptions = true,
            description = {"Delete an available volume of the fleet: vol-... on EC2, vol-local-... on the local provider.",
                    "Refuses one in use (end its instance first) and one Kiln did not create (unless --force).",
                    "An unsaved volume is deleted too, since you ask for it by id: check its snapshots first."})
    public static class Rm implements Runnable {

        @Inject
        Context context;

        @Inject
        Fleets fleets;

        @Mixin
        FleetMixin fleetOptions;

        @Parameters(index = "0", paramLabel = "VOLUME_ID", description = "The volume id.")
        String volumeId;

        @Option(names = "--force", description = "Delete it even though Kiln did not create it.")
        boolean force;

        @Override
        public void run() {
            Fleet fleet = volumeId.startsWith("vol-local-") ? fleets.local() : fleetOptions.fleet(fleets);
            if (fleet instanceof LocalProvider && !volumeId.startsWith("vol-local-")) {
                fleet = fleetOptions.ec2(fleets); // vol-... is an EC2 volume, whatever the default provider
            }
            String done = fleet.deleteVolume(volumeId, force);
            context.err().println("kiln: " + done);
            context.out().println(volumeId + " deleted");
        }
    }
}
