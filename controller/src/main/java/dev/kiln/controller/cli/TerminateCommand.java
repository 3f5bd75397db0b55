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
import dev.kiln.proto.agent.v1.UnmountRequest;
import dev.kiln.proto.agent.v1.UnmountResponse;
import dev.kiln.controller.fleet.Ec2Fleet;
import dev.kiln.controller.fleet.FleetVolume;
import dev.kiln.controller.fleet.StoredVolume;
import io.grpc.StatusRuntimeException;
import jakarta.inject.Inject;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.time.Duration;
import java.util.ArrayList;
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

    @Option(names = "--wait", paramLabel = "DURATION", defaultValue = "5m", description = "EC2: how long to wait for the"
            + " instance to end, to decide what becomes of its volumes (default: ${DEFAULT-VALUE}; later, `kiln reap` decides).")
    String wait;

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
            List<StoredVolume> kept = keptVolumes(fleet, m);
            try {
                unmountKept(fleet, m, endpoint, kept);
            } catch (StatusRuntimeException e) {
                KilnException k = GrpcErrors.translate(e, endpoint, UNMOUNT);
                if (k.exitCode() != ExitCodes.UNREACHABLE) {
                    throw keptBusy(m, k);
                }
            } catch (KilnException e) {
                // An unreachable agent is the case below (--force); any other failure leaves the instance running.
                if (e.exitCode() != ExitCodes.UNREACHABLE) {
                    throw keptBusy(m, e);
                }
            }
            try (AgentClient client = clients.client(endpoint, AgentClients.SHUTDOWN)) {
                client.stub().shutdown(ShutdownRequest.newBuilder().setReason("kiln terminate").build());
                if (fleet instanceof LocalProvider local) {
                    local.markEnding(m.id(), "terminated by user (kiln terminate)");
                    context.err().println("kiln: " + m.id() + " is draining (builds, services, logs, SSH, volumes); its log: " + local.logFile(m.id()));
                    ManagedInstance gone = local.awaitTerminated(m.id(), Duration.ofMinutes(3));
                    local.ended(m.id()).ifPresent(r -> r.volumes().forEach(v -> context.err().println("kiln: " + v)));
                    reattachHints(fleet, m, kept);
                    context.out().println(m.id() + " " + gone.state());
                    return;
                }
                context.err().println("kiln: " + m.id() + " is draining and will power off (terminate); follow with "
                        + "`kiln logs -f agent --agent " + endpoint + " --tls-server-name " + m.certName() + "`");
                endVolumes(fleet, m, kept);
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
            List<StoredVolume> kept = keptVolumes(fleet, m);
            local.terminate(List.of(m.id()), "terminated by user with --force (its agent was stopped, no drain)");
            local.ended(m.id()).ifPresent(r -> r.volumes().forEach(v -> context.err().println("kiln: " + v)));
            reattachHints(fleet, m, kept);
            context.out().println(m.id() + " terminated");
            return;
        }
        context.err().println("kiln: " + unreachable.getMessage() + "; terminating " + m.id() + " through EC2 (--force)");
        List<StoredVolume> kept = keptVolumes(fleet, m);
        fleet.terminate(List.of(m.id()));
        endVolumes(fleet, m, kept);
        context.out().println(m.id() + " terminating");
    }

    /** How long one honest unmount may take: the agent's grace between TERM and KILL, then sync and umount. */
    static final Duration UNMOUNT = Duration.ofMinutes(2);

    /** The instance's volumes marked to keep. */
    private static List<StoredVolume> keptVolumes(Fleet fleet, ManagedInstance m) {
        return fleet.storedVolumes().stream().filter(v -> m.id().equals(v.inUseBy()) && v.kept()).toList();
    }

    /**
     * Unmounts each kept volume through its agent before the instance ends: builds and holders on
     * it are stopped, the filesystem synced and unmounted, and the unmount confirmed. An overlay
     * work tree over it goes first. The mount points follow the instance's layout (/mnt/ROLE).
     */
    private void unmountKept(Fleet fleet, ManagedInstance m, AgentEndpoint endpoint, List<StoredVolume> kept) {
        if (kept.isEmpty()) {
            return;
        }
        List<FleetVolume> all = fleet.volumes(m.id());
        List<String> points = new ArrayList<>();
        boolean overlay = !m.role().equals("server") && all.stream().anyMatch(v -> v.role().equals("sources"))
                && all.stream().anyMatch(v -> v.role().equals("builds"));
        for (StoredVolume k : kept) {
            FleetVolume v = all.stream().filter(x -> x.id().equals(k.id())).findFirst().orElse(null);
            String mp = v == null ? "/mnt/" + k.role() : v.mountPoint() == null ? "/mnt/" + v.role() : v.mountPoint();
            if (mp.isEmpty()) {
                continue; // a directory volume: nothing is mounted
            }
            String root = mp.substring(0, mp.length() - ("/mnt/" + k.role()).length());
            if (overlay && (k.role().equals("sources") || k.role().equals("builds")) && !points.contains(root + "/srv/work")) {
                points.add(0, root + "/srv/work");
            }
            points.add(mp);
        }
        try (AgentClient client = clients.client(endpoint, UNMOUNT)) {
            for (String mp : points) {
                UnmountResponse r = client.stub().unmount(UnmountRequest.newBuilder().setMountPoint(mp).build());
                r.getStoppedProcessesList().forEach(p -> context.err().println("kiln: stopped " + p));
                if (r.getWasMounted()) {
                    context.err().println("kiln: unmounted " + mp + " (synced, confirmed) before " + m.id() + " ends");
                }
            }
        }
    }

    private static KilnException keptBusy(ManagedInstance m, KilnException e) {
        return new KilnException(e.exitCode(), e.getMessage() + "; a volume to keep could not be unmounted first, so "
                + m.id() + " keeps running and nothing was ended: stop what holds it and run `kiln terminate " + m.id()
                + "` again", e);
    }

    /** For each kept volume, the launch that attaches it again. */
    private void reattachHints(Fleet fleet, ManagedInstance m, List<StoredVolume> kept) {
        for (StoredVolume k : kept) {
            context.err().println("kiln: " + k.id() + " (" + k.role() + ") is kept; attach it again with: kiln launch"
                    + (fleet instanceof LocalProvider ? "" : " --provider ec2") + " --role " + m.role() + " --volume "
                    + k.role() + ":" + k.id());
        }
    }

    /** EC2: waits for the instance to end, then says what became of each volume (the data-safe rule). */
    private void endVolumes(Fleet fleet, ManagedInstance m, List<StoredVolume> kept) {
        if (fleet instanceof Ec2Fleet ec2) {
            ec2.endVolumes(m.id(), Durations.parse(wait)).forEach(line -> context.err().println("kiln: " + line));
        }
        reattachHints(fleet, m, kept);
    }
}
