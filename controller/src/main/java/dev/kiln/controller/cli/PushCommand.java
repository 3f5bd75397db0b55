package dev.kiln.controller.cli;

import dev.kiln.controller.ExitCodes;
import dev.kiln.controller.KilnException;
import dev.kiln.controller.ssh.RsyncTransfer;
import dev.kiln.controller.ssh.SshTarget;
import jakarta.inject.Inject;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/** {@code kiln push}: upload a collection into an agent's sources area with rsync over its SSH server. */
@TimeoutMixin.Default(what = "Timeout of the Status request")
@Command(name = "push", mixinStandardHelpOptions = true,
        description = {"Upload the directory SRC into the agent's sources area (/sources/NAME, NAME being SRC's",
                "name unless --name) with rsync over the agent's SSH server, as the owner: incremental,",
                "resumable, with progress, and checked file by file afterwards. Example:",
                "  kiln push ~/Music/masters/vibes",
                "Needs rsync and ssh on this machine."})
public class PushCommand implements Runnable {

    @Inject
    Context context;

    @Inject
    Fleets fleets;

    @Inject
    AgentClients clients;

    @Mixin
    AgentMixin agent;

    @Parameters(index = "0", paramLabel = "SRC", description = "The local directory to upload.")
    Path source;

    @Parameters(index = "1", arity = "0..1", paramLabel = "INSTANCE",
            description = "`local` or HOST:PORT (default: --agent, or the local agent).")
    String instance;

    @Option(names = "--name", paramLabel = "NAME", description = "Directory name under /sources (default: SRC's own name).")
    String name;

    @Option(names = "--delete", description = "Delete files on the agent that SRC no longer has.")
    boolean delete;

    @Mixin
    TimeoutMixin timeout;

    @Override
    public void run() {
        Path src = source.toAbsolutePath().normalize();
        if (!Files.isDirectory(src)) {
            throw new KilnException(ExitCodes.USAGE, src + " is not a directory");
        }
        if (instance != null && !SshSupport.isInstance(instance)) {
            throw new KilnException(ExitCodes.USAGE, "INSTANCE must be `local`, an instance id (i-... or local-...) or HOST:PORT, not '" + instance + "'");
        }
        String dir = name != null ? name : src.getFileName() == null ? "collection" : src.getFileName().toString();
        if (dir.isEmpty() || dir.contains("/") || dir.equals("..") || dir.equals(".")) {
            throw new KilnException(ExitCodes.USAGE, "--name must be a plain directory name, not '" + dir + "'");
        }
        RsyncTransfer.requireTools();
        SshTarget target = SshSupport.target(context, clients, fleets, agent, instance, "owner", () -> timeout.get(context));
        String remote = "/sources/" + dir + "/";
        context.err().println("kiln: pushing " + src + " to " + target.remotePrefix() + remote);
        RsyncTransfer rsync = new RsyncTransfer(target, context.err(), context.terminal());
        RsyncTransfer.Result result = rsync.copy(src + "/", target.remotePrefix() + remote, delete, false);
        List<String> problems = rsync.verify(target.remotePrefix() + remote, src, false);
        if (!problems.isEmpty()) {
            throw new KilnException(ExitCodes.FAILURE, problems.size() + " file(s) missing or of the wrong size on the agent: "
                    + String.join(", ", problems.subList(0, Math.min(10, problems.size()))) + (problems.size() > 10 ? ", ..." : ""));
        }
        context.err().println("kiln: pushed " + result.files() + " changed file(s), " + result.bytes() + " bytes in "
                + result.seconds() + "s; every file checked");
        context.out().println(remote);
    }
}
