package dev.kiln.controller.cli;

import dev.kiln.controller.ExitCodes;
import dev.kiln.controller.KilnException;
import dev.kiln.controller.client.AgentEndpoint;
import dev.kiln.controller.client.ClientTls;
import dev.kiln.controller.client.Enroller;
import dev.kiln.controller.fleet.ManagedInstance;
import dev.kiln.controller.pki.FleetInit;
import jakarta.inject.Inject;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.util.List;

/** {@code kiln enroll}: give an EC2 agent that still serves its bootstrap certificate a certificate for its own key. */
@Command(name = "enroll", mixinStandardHelpOptions = true,
        description = {"Enroll the agent on INSTANCE: it still presents the bootstrap certificate from its user",
                "data (launched with --no-wait, or its launch's wait was interrupted); the fleet CA issues a",
                "certificate for a key the agent generated, which never leaves the instance, and from then on",
                "the bootstrap certificate is refused (docs/security.md). A no-op for an enrolled agent.",
                "The bootstrap certificate expires 5 minutes after the launch's --wait would have ended."})
public class EnrollCommand implements Runnable {

    @Inject
    Context context;

    @Inject
    Fleets fleets;

    @Mixin
    FleetMixin fleetOptions;

    @Parameters(paramLabel = "INSTANCE", description = "An EC2 instance id.")
    String instance;

    @Mixin
    TimeoutMixin timeout;

    @Override
    public void run() {
        ManagedInstance m = fleetOptions.ec2(fleets).get(instance);
        AgentEndpoint endpoint = fleetOptions.endpoint(context, m);
        if (endpoint == null || m.certName() == null || m.certName().isEmpty()) {
            throw new KilnException(ExitCodes.UNREACHABLE, instance + " has no address to reach or no kiln:cert-name tag");
        }
        Enroller enroller = new Enroller(new FleetInit(context.paths(), context.clock()).loadCa(), ClientTls.of(context.paths()),
                context.paths().stateDir().resolve("enrolled"), timeout.get(context));
        Enroller.Result r = enroller.enroll(endpoint, m.id(), List.of(m.certName()), List.of());
        context.err().println(r.enrolledNow()
                ? "kiln: enrolled the agent's own key on " + m.id() + "; its bootstrap certificate is refused from now on"
                : "kiln: the agent on " + m.id() + " is enrolled already");
    }
}
