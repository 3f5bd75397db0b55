package dev.kiln.controller.cli;

import dev.kiln.controller.fleet.Fleet;
import dev.kiln.controller.fleet.ManagedInstance;
import jakarta.inject.Inject;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.time.Instant;
import java.util.List;

/** {@code kiln reap}: the controller-side backstop. */
@Command(name = "reap", mixinStandardHelpOptions = true,
        description = {"Terminate managed instances whose kiln:expires-at passed more than --grace ago",
                "(their agents and backstop timers should have ended them; this is the last resort). Run it from cron."})
public class ReapCommand implements Runnable {

    @Inject
    Context context;

    @Mixin
    FleetMixin fleetOptions;

    @Option(names = "--grace", defaultValue = "30m", description = "How long past expiry before reaping (default: ${DEFAULT-VALUE}).")
    String grace;

    @Option(names = "--dry-run", description = "Only list what would be terminated.")
    boolean dryRun;

    @Override
    public void run() {
        Fleet fleet = fleetOptions.fleet(context);
        List<ManagedInstance> expired = fleet.expired(Instant.now(), Durations.parse(grace));
        Table t = new Table("INSTANCE", "ROLE", "EXPIRED-AT", "ACTION");
        expired.forEach(m -> t.row(m.id(), m.role(), String.valueOf(m.expiresAt()), dryRun ? "would terminate" : "terminated"));
        if (!dryRun) {
            fleet.terminate(expired.stream().map(ManagedInstance::id).toList());
        }
        t.print(context.out());
        context.err().println("kiln: " + expired.size() + " expired instance" + (expired.size() == 1 ? "" : "s")
                + (dryRun ? " found" : " terminated"));
    }
}
