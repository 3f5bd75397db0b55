package dev.kiln.controller.cli;

import dev.kiln.controller.ExitCodes;
import dev.kiln.controller.KilnException;
import dev.kiln.controller.local.LocalProvider;
import dev.kiln.controller.local.LocalPrune;
import jakarta.inject.Inject;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.util.List;
import java.util.concurrent.Callable;

/** {@code kiln prune}: clear what crashes left in the local fleet. */
@Command(name = "prune", mixinStandardHelpOptions = true,
        description = {"Clear what crashes left in the local fleet's store: directories of instances whose agent is gone",
                "(each leaves its record for `kiln ls --all`), loop devices over the fleet's images that no running",
                "instance holds, and volumes whose instance is gone, deleted only when their data is safe (docs/volumes.md);",
                "every other volume is kept and named. Prints every entry it removes, keeps or leaves, and why."})
public class PruneCommand implements Callable<Integer> {

    @Inject
    Context context;

    @Inject
    Fleets fleets;

    @Mixin
    FleetMixin fleetOptions;

    @Option(names = "--dry-run", description = "Only print what would be removed; change nothing.")
    boolean dryRun;

    @Override
    public Integer call() {
        if (!fleetOptions.providerName(context).equals("local")) {
            throw new KilnException(ExitCodes.USAGE, "`kiln prune` clears the local fleet; on EC2, `kiln reap` ends"
                    + " instances whose lease has passed");
        }
        LocalProvider fleet = fleets.local();
        if (dryRun) {
            fleet.observeOnly();
        }
        List<LocalPrune.Line> report = new LocalPrune(fleet, dryRun).run();
        report.forEach(l -> context.out().println(l.text()));
        long failed = report.stream().filter(LocalPrune.Line::failed).count();
        if (report.isEmpty()) {
            context.err().println("kiln: nothing to prune in " + fleet.root());
        } else if (failed > 0) {
            context.err().println("kiln: " + failed + " left as it was (see above)");
        }
        return failed > 0 ? ExitCodes.FAILURE : ExitCodes.OK;
    }
}
