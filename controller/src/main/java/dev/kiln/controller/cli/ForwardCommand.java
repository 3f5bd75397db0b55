package dev.kiln.controller.cli;

import dev.kiln.controller.ExitCodes;
import dev.kiln.controller.KilnException;
import dev.kiln.controller.ssh.ForwardTarget;
import dev.kiln.controller.ssh.SshForward;
import jakarta.inject.Inject;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Parameters;

import java.time.Duration;

/** {@code kiln forward}: a local port that leads to a service (or allowed port) on an instance's loopback. */
@TimeoutMixin.Default(what = "Timeout of the Status request")
@Command(name = "forward", mixinStandardHelpOptions = true,
        description = {"Forward a local port to a service or an allowed port on the instance's loopback, with",
                "OpenSSH's ssh -N -L and Kiln's ssh settings (the agent's host key strictly checked against",
                "Kiln's known_hosts). Prints the local address (a URL for a service with a link path) on",
                "stdout and runs until Ctrl-C. The owner may forward to the instance's services' ports and",
                "to the ports it was launched with (--forward-port). Examples:",
                "  kiln forward local-1a2b3c4d notebook        (http://127.0.0.1:8888/)",
                "  kiln forward local-1a2b3c4d nrepl 7888",
                "  kiln forward i-0abc1234def567890 7888 17888",
                "LOCAL_PORT defaults to the instance's port, or a free one when that is taken here."})
public class ForwardCommand implements Runnable {

    @Inject
    Context context;

    @Inject
    Fleets fleets;

    @Inject
    AgentClients clients;

    @Mixin
    AgentMixin agent;

    @Parameters(index = "0", paramLabel = "INSTANCE",
            description = "An instance id (local-... or i-...), `local`, or HOST:PORT of the agent's gRPC server.")
    String instance;

    @Parameters(index = "1", paramLabel = "SERVICE|PORT", description = "A service's name, or a port the instance allows.")
    String what;

    @Parameters(index = "2", arity = "0..1", paramLabel = "LOCAL_PORT", description = "The port on 127.0.0.1 here.")
    Integer localPort;

    @Mixin
    TimeoutMixin timeout;

    @Override
    public void run() {
        if (localPort != null && (localPort < 1 || localPort > 65535)) {
            throw new KilnException(ExitCodes.USAGE, "LOCAL_PORT must be 1-65535, not " + localPort);
        }
        SshSupport.Resolved r = SshSupport.resolve(context, clients, fleets, agent, instance, "owner", () -> timeout.get(context));
        ForwardTarget target = ForwardTarget.resolve(r.status(), what, instance);
        int local;
        if (localPort != null) {
            local = localPort;
            if (!SshForward.isFree(local)) {
                throw new KilnException(ExitCodes.EXISTS, "local port " + local + " is in use; give another as LOCAL_PORT");
            }
        } else if (SshForward.isFree(target.port())) {
            local = target.port();
        } else {
            local = SshForward.freePort();
            context.err().println("kiln: local port " + target.port() + " is in use; using " + local);
        }
        SshForward forward = new SshForward(r.target(), local, target.port());
        // Ctrl-C reaches ssh too (same process group); TERM only this process. Either ends the forward cleanly.
        java.util.List<sun.misc.Signal> signals = java.util.List.of(new sun.misc.Signal("INT"), new sun.misc.Signal("TERM"));
        signals.forEach(s -> sun.misc.Signal.handle(s, sig -> forward.stop()));
        forward.start(Duration.ofSeconds(30));
        context.out().println(target.localAddress(local));
        context.out().flush();
        context.err().println("kiln: forwarding 127.0.0.1:" + local + " to " + target.describe() + " on " + instance
                + "; Ctrl-C ends it");
        forward.await();
        context.err().println("kiln: forward to " + target.describe() + " on " + instance + " closed");
    }
}
