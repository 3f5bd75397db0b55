package dev.kiln.controller.cli;

import dev.kiln.controller.pki.FleetInit;
import jakarta.inject.Inject;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.util.List;

/** {@code kiln init}: create the fleet CA, the controller's certificate and an SSH key. */
@Command(name = "init", mixinStandardHelpOptions = true,
        description = {"Create the fleet CA, this controller's client certificate and an ed25519 SSH key",
                "in ~/.config/kiln (or $XDG_CONFIG_HOME/kiln). Private keys are written 0600.",
                "Refuses to replace an existing CA unless --force is given."})
public class InitCommand implements Runnable {

    @Inject
    Context context;

    @Option(names = "--force", description = "Replace an existing fleet CA (agents issued by the old one stop trusting this controller).")
    boolean force;

    @Option(names = "--identity", paramLabel = "NAME", description = "Who this controller is, used in names (default: user@host).")
    String identity;

    @Override
    public void run() {
        FleetInit init = new FleetInit(context.paths(), context.clock());
        List<FleetInit.Entry> entries = init.run(force, identity == null ? FleetInit.defaultIdentity() : identity);
        Table table = new Table("FILE", "WHAT", "ACTION");
        entries.forEach(e -> table.row(e.path().toString(), e.what(), e.action()));
        table.print(context.out());
        context.err().println("kiln: initialised in " + context.paths().configDir()
                + "; next: `kiln up --local` starts a local agent");
    }
}
