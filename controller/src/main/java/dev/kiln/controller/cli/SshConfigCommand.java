package dev.kiln.controller.cli;

import dev.kiln.controller.ssh.SshTarget;
import jakarta.inject.Inject;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/** {@code kiln ssh-config}: an ssh Host block for an agent's SSH server, and its host key in Kiln's known_hosts. */
@Command(name = "ssh-config", mixinStandardHelpOptions = true,
        description = {"Print an OpenSSH Host block (host, port, user, identity file) for the agent's SSH server,",
                "and write the agent's host key (from its Status, over mutual TLS) to Kiln's known_hosts,",
                "so sftp, scp, rsync -e ssh and sshfs work with strict host key checking. E.g.:",
                "  kiln ssh-config > ~/.config/kiln/ssh_config",
                "  sftp -F ~/.config/kiln/ssh_config kiln-local",
                "  rsync -a -e 'ssh -F ~/.config/kiln/ssh_config' kiln-local:/outputs/build-opus/ opus/"})
public class SshConfigCommand implements Runnable {

    @Inject
    Context context;

    @Mixin
    AgentMixin agent;

    @Parameters(index = "0", arity = "0..1", paramLabel = "INSTANCE",
            description = "`local` or HOST:PORT of the agent's gRPC server (default: --agent, or the local agent).")
    String instance;

    @Option(names = {"-u", "--user"}, paramLabel = "USER", defaultValue = "owner",
            description = "owner (sees /outputs read-only and /sources read-write) or reader (/outputs only). Default: ${DEFAULT-VALUE}.")
    String user;

    @Option(names = "--timeout", paramLabel = "DURATION", description = "Timeout of the Status request (default: 10s).")
    String timeout;

    @Override
    public void run() {
        SshTarget target = SshSupport.target(context, agent, instance, user, timeout);
        context.out().print(target.hostBlock());
        context.err().println("kiln: wrote the host key of " + target.knownHostsName() + " to " + target.knownHosts()
                + "; try: sftp -F <(kiln ssh-config) " + target.alias());
    }
}
