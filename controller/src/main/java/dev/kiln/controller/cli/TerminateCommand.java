package dev.kiln.controller.cli;

import dev.kiln.controller.ExitCodes;
import dev.kiln.controller.KilnException;
import dev.kiln.controller.client.AgentClient;
import dev.kiln.controller.client.AgentEndpoint;
import dev.kiln.controller.client.GrpcErrors;
import dev.kiln.controller.fleet.Fleet;
import dev.kiln.controller.local.LocalProvider;
import dev.kiln.controller.fleet.ManagedInstance;
import dev.kiln.proto.agent.v1.ShutdownRequest;
import io.grpc.StatusRuntimeException;
import jakarta.inject.Inject;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.time.Duration;
import java.util.List;

/** {@code kiln terminate}: end a managed instance, through its agent (or EC2 with --force). */
@Command(name = "terminate", mixinStandardHelpOptions = true,
        description = {"End a managed instance gracefully: its agent drains (builds, logs, SSH, volumes) and powers off,",
                "which terminates it (a local instance's agent exits; kiln waits for it and releases its volumes).",
                "--force ends it without its agent: EC2's TerminateInstances, or TERM/KILL of the local agent's process."})
public class TerminateCommand implements Runnable {

    @Inject
    Context context;

    @Inject
    Fleets fleets;

    @Inject
    AgentClients clients;

    @Mixin
    FleetMixin fleetOptions;

    @Parameters(index = "0", paramLabel = "INSTANCE", description = "The instance id.")
    String instance;

    @Option(names = "--force", description = "If the agent is unreachable, end the instance without it: through EC2, or TERM/KILL"
            + " of a local agent's process (no drain: unflushed work is lost).")
    boolean force;

    @Override
    public void run() {
        Fleet fleet = fleetOptions.fleet(fleets, instance);
        java.util.Optional<dev.kiln.controller.fleet.EndedInstance> ended = fleet.ended(instance);
        ManagedInstance m = ended.isPresent() ? null : fleet.get(instance);
        if (m != null && m.state().equals("terminated")) {
            ended = fleet.ended(instance); // its agent had ended: reading it just retired it
        }
        if (ended.isPresent() || m.state().equals("terminated")) {
            // Ending what has ended is done: say when and how, and succeed.
            context.err().println("kiln: " + ended.map(dev.kiln.controller.fleet.EndedInstance::summary)
                    .orElse(instance + " is terminated") + "; nothing to do (`kiln ls --all` lists it)");
            ended.ifPresent(r -> r.volumes().forEach(v -> context.err().println("kiln: " + v)));
            context.out().println(instance + " terminated");
            return;
        }
        AgentEndpoint endpoint = fleetOptions.endpoint(context, m);
        KilnException unreachable;
        if (endpoint == null) {
            unreachable = new KilnException(ExitCodes.UNREACHABLE, m.id() + " has no usable address");
        } else {
            try (AgentClient client = clients.client(endpoint, AgentClients.SHUTDOWN)) {
                client.stub().shutdown(ShutdownRequest.newBuilder().setReason("kiln terminate").build());
                if (fleet instanceof LocalProvider local) {
                    local.markEnding(m.id(), "terminated by user (kiln terminate)");
                    context.err().println("kiln: " + m.id() + " is draining (builds, logs, SSH, volumes); its log: " + local.logFile(m.id()));
                    ManagedInstance gone = local.awaitTerminated(m.id(), Duration.ofMinutes(3));
                    local.ended(m.id()).ifPresent(r -> r.volumes().forEach(v -> context.err().println("kiln: " + v)));
                    context.out().println(m.id() + " " + gone.state());
                    return;
                }
                context.err().println("kiln: " + m.id() + " is draining and will power off (terminate); follow with "
                        + "`kiln logs -f agent --agent " + endpoint + " --tls-server-name " + m.certName() + "`");
                return;
            } catch (StatusRuntimeException e) {
                unreachable = GrpcErrors.translate(e, endpoint, AgentClients.SHUTDOWN);
            } catch (KilnException e) {
                unreachable = e;
            }
        }
        if (!force) {
            throw new KilnException(unreachable.exitCode(), unreachable.getMessage() + "; to terminate " + m.id()
                    + " without a drain, add --force");
        }
        if (fleet instanceof LocalProvider local) {
            context.err().println("kiln: " + unreachable.getMessage() + "; stopping the agent process of " + m.id()
                    + " (--force: TERM, then KILL)");
            local.terminate(List.of(m.id()), "terminated by user with --force (its agent was stopped, no drain)");
            local.ended(m.id()).ifPresent(r -> r.volumes().forEach(v -> context.err().println("kiln: " + v)));
            context.out().println(m.id() + " terminated");
            return;
        }
        context.err().println("kiln: " + unreachable.getMessage() + "; terminating " + m.id() + " through EC2 (--force)");
        fleet.terminate(List.of(m.id()));
        context.out().println(m.id() + " terminating");
    }
}
