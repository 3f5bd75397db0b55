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
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/** {@code kiln pull}: download outputs from an agent with rsync over its SSH server. */
@TimeoutMixin.Default(what = "Timeout of the Status request")
@Command(name = "pull", mixinStandardHelpOptions = true,
        description = {"Download an agent's outputs into DEST with rsync over the agent's SSH server:",
                "incremental (only changed files travel), resuming files a broken transfer left partial,",
                "a progress bar with bytes/s and ETA on a terminal, and a check that every file arrived",
                "with its size (exit 1 naming what is missing). PROFILE pulls the profile's directory,",
                "/outputs/build-PROFILE or /outputs/TREE/build-PROFILE (e.g. /outputs/vibes/build-opus);",
                "without it the whole of /outputs. A profile or --path that does not exist is refused",
                "(exit 6) with the profiles that do, and DEST is left untouched. Examples:",
                "  kiln pull local-1a2b3c4d opus ~/Music/opus",
                "  kiln pull i-0abc1234def567890 flac ~/Music/flac",
                "  kiln pull opus ~/Music/opus          (from --agent, or the local agent)",
                "Needs rsync and ssh on this machine."})
public class PullCommand implements Runnable {

    @Inject
    Context context;

    @Inject
    Fleets fleets;

    @Inject
    AgentClients clients;

    @Mixin
    AgentMixin agent;

    @Parameters(arity = "1..3", paramLabel = "[INSTANCE] [PROFILE] DEST",
            description = "INSTANCE: an instance id (local-... or i-...), `local` or HOST:PORT (default: --agent, or the local agent); PROFILE: a profile name such as opus; DEST: a local directory.")
    List<String> words = new ArrayList<>();

    @Option(names = "--path", paramLabel = "REMOTE", description = "Pull this path of the agent's tree instead (e.g. /outputs/build-flac/artist).")
    String path;

    @Option(names = {"-u", "--user"}, paramLabel = "USER", defaultValue = "owner", description = "owner or reader (default: ${DEFAULT-VALUE}).")
    String user;

    @Option(names = "--delete", description = "Delete local files that the agent no longer has.")
    boolean delete;

    @Mixin
    TimeoutMixin timeout;

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
        if (Files.exists(dest) && !Files.isDirectory(dest)) {
            throw new KilnException(ExitCodes.USAGE, "DEST " + dest + " is a file, not a directory; name a directory to pull into");
        }
        RsyncTransfer.requireTools();
        SshTarget target = SshSupport.target(context, clients, fleets, agent, instance, user, () -> timeout.get(context));
        RsyncTransfer rsync = new RsyncTransfer(target, context.err(), context.terminal());
        String who = instance != null ? instance : "the agent";
        String remote;
        if (path != null) {
            remote = (path.startsWith("/") ? path : "/" + path).replaceAll("/+$", "");
            RsyncTransfer.Listing there = rsync.list(List.of("-d"), target.remotePrefix() + (remote.isEmpty() ? "/" : remote));
            if (there.missing()) {
                throw new KilnException(ExitCodes.NOT_FOUND, who + " has no " + remote + ". " + profilesHint(rsync, target, instance, dest));
            }
            if (there.code() != 0) {
                throw new KilnException(ExitCodes.FAILURE, "cannot read " + remote + " on " + who + ": " + there.err());
            }
        } else if (profile != null) {
            remote = profilePath(rsync, target, who, instance, profile, dest);
        } else {
            remote = "/outputs";
        }
        remote = remote + "/";
        List<Path> created = missingDirectories(dest);
        try {
            Files.createDirectories(dest);
        } catch (IOException e) {
            throw new KilnException(ExitCodes.FAILURE, "cannot create " + dest + ": " + e.getMessage(), e);
        }
        context.err().println("kiln: pulling " + target.remotePrefix() + remote + " into " + dest);
        RsyncTransfer.Result result;
        try {
            result = rsync.copy(target.remotePrefix() + remote, dest + "/", delete, true);
        } catch (KilnException e) {
            removeIfEmpty(created);
            throw e;
        }
        List<String> problems = rsync.verify(target.remotePrefix() + remote, dest, true);
        if (!problems.isEmpty()) {
            throw new KilnException(ExitCodes.FAILURE, problems.size() + " file(s) missing or of the wrong size after the transfer: "
                    + String.join(", ", problems.subList(0, Math.min(10, problems.size()))) + (problems.size() > 10 ? ", ..." : ""));
        }
        context.err().println("kiln: pulled " + result.files() + " changed file(s), " + result.bytes() + " bytes in "
                + result.seconds() + "s; every file checked");
        context.out().println(dest);
    }

    /** Where PROFILE is in the agent's outputs: /outputs/build-PROFILE, or /outputs/TREE/build-PROFILE for one TREE. */
    private String profilePath(RsyncTransfer rsync, SshTarget target, String who, String instance, String profile, Path dest) {
        Map<String, List<String>> profiles = profiles(rsync, target);
        List<String> places = profiles.getOrDefault(profile, List.of());
        if (places.isEmpty()) {
            throw new KilnException(ExitCodes.NOT_FOUND, who + " has no profile '" + profile + "' (no /outputs/build-" + profile
                    + " or /outputs/*/build-" + profile + "). " + profilesHint(profiles, instance, dest));
        }
        if (places.size() > 1) {
            throw new KilnException(ExitCodes.USAGE, "profile '" + profile + "' is in " + places.size() + " places on " + who + ": "
                    + String.join(", ", places) + "; choose one with --path, e.g. `kiln pull " + (instance == null ? "" : instance + " ")
                    + SshSupport.shellWord(dest.toString()) + " --path " + places.get(0) + "`");
        }
        return places.get(0);
    }

    /** The agent's profiles, by name, with where each is: build-* directories in /outputs and one level below. */
    static Map<String, List<String>> profiles(RsyncTransfer rsync, SshTarget target) {
        RsyncTransfer.Listing listing = rsync.list(List.of("-r", "--include=/*/", "--include=/*/build-*/", "--exclude=*"),
                target.remotePrefix() + "/outputs/");
        if (listing.code() != 0) {
            throw new KilnException(ExitCodes.FAILURE, "cannot list the agent's /outputs: " + listing.err());
        }
        Map<String, List<String>> profiles = new TreeMap<>();
        for (RsyncTransfer.Entry e : listing.entries()) {
            String name = e.path().substring(e.path().lastIndexOf('/') + 1);
            if (e.type() == 'd' && name.startsWith("build-") && name.length() > "build-".length()) {
                profiles.computeIfAbsent(name.substring("build-".length()), k -> new ArrayList<>()).add("/outputs/" + e.path());
            }
        }
        return profiles;
    }

    private static String profilesHint(RsyncTransfer rsync, SshTarget target, String instance, Path dest) {
        return profilesHint(profiles(rsync, target), instance, dest);
    }

    /** The profiles that do exist, and how to pull one. */
    private static String profilesHint(Map<String, List<String>> profiles, String instance, Path dest) {
        if (profiles.isEmpty()) {
            return "It has no profiles yet (no build-* directory in /outputs or /outputs/*/): build them with `kiln build`,"
                    + " or pull another path with --path, or all of /outputs without PROFILE.";
        }
        List<String> named = new ArrayList<>();
        profiles.forEach((name, places) -> named.add(name + " (" + String.join(", ", places) + ")"));
        return "Its profiles: " + String.join(", ", named) + "; e.g. `kiln pull " + (instance == null ? "" : instance + " ")
                + profiles.keySet().iterator().next() + " " + SshSupport.shellWord(dest.toString()) + "`.";
    }

    /** DEST and those of its parents that do not exist yet, deepest first. */
    private static List<Path> missingDirectories(Path dest) {
        List<Path> missing = new ArrayList<>();
        for (Path p = dest; p != null && !Files.exists(p, LinkOption.NOFOLLOW_LINKS); p = p.getParent()) {
            missing.add(p);
        }
        return missing;
    }

    /** Removes the directories this pull created, if the transfer left them empty. */
    private static void removeIfEmpty(List<Path> created) {
        for (Path p : created) {
            try {
                Files.delete(p); // fails, and keeps it, unless it is an empty directory
            } catch (IOException e) {
                return;
            }
        }
    }
}
