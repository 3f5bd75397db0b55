package dev.kiln.controller.cli;

import dev.kiln.controller.ExitCodes;
import dev.kiln.controller.KilnException;
import jakarta.inject.Inject;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.util.Optional;

/** {@code kiln down --local}: stop the local agent that `kiln up --local` started. */
@Command(name = "down", mixinStandardHelpOptions = true,
        description = "Stop the local kiln-agent started by `kiln up --local` (only that process, by its pid file).")
public class DownCommand implements Runnable {

    @Inject
    Context context;

    @Inject
    Fleets fleets;

    @Option(names = "--local", description = "Stop the local agent.")
    boolean local;

    @Option(names = "--grace", paramLabel = "DURATION", defaultValue = "20s",
            description = "Time between TERM and KILL (default: ${DEFAULT-VALUE}).")
    String grace;

    @Override
    public void run() {
        if (!local) {
            throw new KilnException(ExitCodes.USAGE, "`kiln down` needs --local (EC2 instances end with `kiln stop` or `kiln terminate`)");
        }
        Optional<Long> stopped = fleets.localAgent().down(Durations.parse(grace));
        if (stopped.isPresent()) {
            context.err().println("kiln: stopped the local agent (pid " + stopped.get() + ")");
        } else {
            context.err().println("kiln: no local agent was running");
        }
    }
}
