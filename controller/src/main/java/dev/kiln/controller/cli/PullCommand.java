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

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/** {@code kiln pull}: download outputs from an agent with rsync over its SSH server. */
@Command(name = "pull", mixinStandardHelpOptions = true,
        description = {"Download an agent's outputs into DEST with rsync over the agent's SSH server:",
                "incremental (only changed files travel), resuming files a broken transfer left partial,",
                "a progress bar with bytes/s and ETA on a terminal, and a check that every file arrived",
                "with its size (exit 1 naming what is missing). PROFILE pulls /outputs/build-PROFILE;",
                "without it the whole of /outputs. Examples:",
                "  kiln pull opus ~/Music/opus",
                "  kiln pull 203.0.113.7:7443 flac ~/Music/flac",
                "Needs rsync and ssh on this machine."})
public class PullCommand implements Runnable {

    @Inject
    Context context;

    @Mixin
    AgentMixin agent;

    @Parameters(arity = "1..3", paramLabel = "[INSTANCE] [PROFILE] DEST",
            description = "INSTANCE: `local` or HOST:PORT (default: --agent, or the local agent); PROFILE: a profile name; DEST: a local directory.")
    List<String> words = new ArrayList<>();

    @Option(names = "--path", paramLabel = "REMOTE", description = "Pull this path of the agent's tree instead (e.g. /outputs/build-flac/artist).")
    String path;

    @Option(names = {"-u", "--user"}, paramLabel = "USER", defaultValue = "owner", description = "owner or reader (default: ${DEFAULT-VALUE}).")
    String user;

    @Option(names = "--delete", description = "Delete local files that the agent no longer has.")
    boolean delete;

    @Option(names = "--timeout", paramLabel = "DURATION", description = "Timeout of the Status request (default: 10s).")
    String timeout;

    @Override
    public void run() {
        String instance = null;
        String profile = null;
        List<String> w = new ArrayList<>(words);
        if (w.size() == 3) {
            instance = w.remove(0);
            profile = w.remove(0);
        } else if (w.size() == 2) {
            if (SshSupport.isInstance(w.get(0))) {
                instance = w.remove(0);
            } else {
                profile = w.remove(0);
            }
        }
        if (instance != null && !SshSupport.isInstance(instance)) {
            throw new KilnException(ExitCodes.USAGE, "INSTANCE must be `local`, an instance id (i-... or local-...) or HOST:PORT, not '" + instance + "'");
        }
        if (profile != null && (profile.contains("/") || profile.startsWith(".") || profile.isEmpty())) {
            throw new KilnException(ExitCodes.USAGE, "PROFILE is a profile name such as opus, not '" + profile + "' (use --path for a path)");
        }
        if (profile != null && path != null) {
            throw new KilnException(ExitCodes.USAGE, "give PROFILE or --path, not both");
        }
        Path dest = Path.of(w.get(0)).toAbsolutePath();
        String remote = path != null ? path : profile != null ? "/outputs/build-" + profile : "/outputs";
        if (!remote.startsWith("/")) {
            remote = "/" + remote;
        }
        remote = remote.endsWith("/") ? remote : remote + "/";
        RsyncTransfer.requireTools();
        SshTarget target = SshSupport.target(context, agent, instance, user, timeout);
        try {
            Files.createDirectories(dest);
        } catch (IOException e) {
            throw new KilnException(ExitCodes.FAILURE, "cannot create " + dest + ": " + e.getMessage(), e);
        }
        context.err().println("kiln: pulling " + target.remotePrefix() + remote + " into " + dest);
        RsyncTransfer rsync = new RsyncTransfer(target, context.err(), context.terminal());
        RsyncTransfer.Result result = rsync.copy(target.remotePrefix() + remote, dest + "/", delete, true);
        List<String> problems = rsync.verify(target.remotePrefix() + remote, dest, true);
        if (!problems.isEmpty()) {
            throw new KilnException(ExitCodes.FAILURE, problems.size() + " file(s) missing or of the wrong size after the transfer: "
                    + String.join(", ", problems.subList(0, Math.min(10, problems.size()))) + (problems.size() > 10 ? ", ..." : ""));
        }
        context.err().println("kiln: pulled " + result.files() + " changed file(s), " + result.bytes() + " bytes in "
                + result.seconds() + "s; every file checked");
        context.out().println(dest);
    }
}
