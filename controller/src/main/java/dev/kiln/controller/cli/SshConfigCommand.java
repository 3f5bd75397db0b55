package dev.kiln.controller.cli;

import dev.kiln.controller.ExitCodes;
import dev.kiln.controller.KilnException;
import dev.kiln.controller.ssh.ForwardTarget;
import dev.kiln.controller.ssh.SshTarget;
import jakarta.inject.Inject;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.nio.file.Path;
import java.util.List;

/** {@code kiln ssh-config}: an ssh Host block for an agent's SSH server, and its host key in Kiln's known_hosts. */
@TimeoutMixin.Default(what = "Timeout of the Status request")
@Command(name = "ssh-config", mixinStandardHelpOptions = true,
        description = {"Print an OpenSSH Host block for the agent's SSH server. It names the host, port, user and",
                "identity file; the agent's host key (from its Status, over mutual TLS) goes to Kiln's",
                "known_hosts, so sftp, scp, rsync -e ssh and sshfs work with strict host key checking. The Host is",
                "kiln-ID for an instance, kiln-local for the local agent. Save the block to a file, e.g.:",
                "  kiln ssh-config local-1a2b3c4d > ~/.config/kiln/kiln-local-1a2b3c4d.ssh_config",
                "  sftp -F ~/.config/kiln/kiln-local-1a2b3c4d.ssh_config kiln-local-1a2b3c4d",
                "or add `Include ~/.config/kiln/*.ssh_config` at the top of ~/.ssh/config to reach every",
                "saved Host with plain ssh, sftp, rsync and sshfs."})
public class SshConfigCommand implements Runnable {

    @Inject
    Context context;

    @Inject
    Fleets fleets;

    @Inject
    AgentClients clients;

    @Mixin
    AgentMixin agent;

    @Parameters(index = "0", arity = "0..1", paramLabel = "INSTANCE",
            description = "An instance id (local-... or i-...), `local`, or HOST:PORT of the agent's gRPC server (default: --agent, or the local agent).")
    String instance;

    @Option(names = {"-u", "--user"}, paramLabel = "USER", defaultValue = "owner",
            description = "owner (sees /outputs read-only and /sources read-write) or reader (/outputs only). Default: ${DEFAULT-VALUE}.")
    String user;

    @Option(names = "--forward", description = "Add a LocalForward line for each of the instance's services and other"
            + " ports it allows forwarding to (the same port on 127.0.0.1 here); ssh -N with the block holds them open.")
    boolean forward;

    @Mixin
    TimeoutMixin timeout;

    @Override
    public void run() {
        if (forward && !SshTarget.user(user).equals("owner")) {
            throw new KilnException(ExitCodes.USAGE, "--forward is for the owner: only the owner may forward ports (drop -u " + user + ")");
        }
        SshSupport.Resolved resolved = SshSupport.resolve(context, clients, fleets, agent, instance, user, () -> timeout.get(context));
        SshTarget target = resolved.target();
        context.out().print(target.hostBlock());
        if (forward) {
            List<ForwardTarget> targets = ForwardTarget.all(resolved.status());
            context.out().print(SshTarget.localForwards(targets));
            if (targets.isEmpty()) {
                context.err().println("kiln: " + target.alias() + " allows no forwarding (no service with a port, no --forward-port)");
            }
        }
        // OpenSSH reads -F only from a regular file (not from <(...)), so the hint saves the block first.
        Path file = context.paths().knownHosts().toAbsolutePath().getParent().resolve(target.alias() + ".ssh_config");
        StringBuilder again = new StringBuilder("kiln ssh-config");
        if (instance != null) {
            again.append(' ').append(SshSupport.shellWord(instance));
        } else if (agent.agent != null) {
            again.append(" --agent ").append(SshSupport.shellWord(agent.agent));
        }
        if (!target.user().equals("owner")) {
            again.append(" -u ").append(target.user());
        }
        if (forward) {
            again.append(" --forward");
        }
        context.err().println("kiln: wrote the host key of " + target.knownHostsName() + " to " + target.knownHosts()
                + ". To use this Host block, save it to a file and connect to " + target.alias() + ":");
        context.err().println("  " + again + " > " + SshSupport.shellWord(file.toString()));
        context.err().println("  sftp -F " + SshSupport.shellWord(file.toString()) + " " + target.alias());
        if (forward) {
            context.err().println("  ssh -F " + SshSupport.shellWord(file.toString()) + " -N " + target.alias() + "   (holds the forwards open)");
        }
        context.err().println("or add `Include " + includeWord(file.getParent() + "/*.ssh_config") + "` at the top of ~/.ssh/config,"
                + " then: sftp " + target.alias());
    }

    /** An ssh_config argument: OpenSSH takes double quotes around one with spaces. */
    private static String includeWord(String s) {
        return s.contains(" ") ? "\"" + s + "\"" : s;
    }
}
