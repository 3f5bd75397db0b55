package dev.kiln.agent.service;

import dev.kiln.agent.build.BootBuild;
import dev.kiln.agent.build.BuildManager;
import dev.kiln.agent.build.BuildRecord;
import dev.kiln.agent.build.BuildSpec;
import dev.kiln.agent.build.BuildState;
import dev.kiln.agent.build.BuildUser;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.Supplier;

/**
 * The boot script ({@code kiln.boot-script}): run once per boot of the machine, after the boot
 * mounts, as the build user with {@code /bin/sh}, as a command build (recorded and logged like any
 * build, labelled {@code kiln:boot=true} and {@code kiln:boot-script=true}) in the
 * {@link WorkDirectory}, with the instance's labels as {@code KILN_LABEL_*} variables. The
 * services start when it succeeds; when it fails they do not, and {@link #problems()} says why.
 *
 * <p>Root writes the script into {@code <state-dir>/boot-script/script} (a directory and file of
 * root's that the build user's group can read but not change), never anywhere the build user could
 * have prepared. Its request id holds the kernel's boot id, so an agent restarted in the same boot finds
 * the run it already made and does not run the script again.
 */
public final class BootScript {

    /** The label that marks the boot script's build (besides {@link BootBuild#LABEL}). */
    public static final String LABEL = "kiln:boot-script";

    private static final Logger LOG = LoggerFactory.getLogger(BootScript.class);

    private final String script;
    private final BuildManager builds;
    private final ServiceSupervisor services;
    private final Path stateDir;
    private final Path bootIdFile;
    private final Supplier<BuildUser> user;
    private final List<String> problems = new CopyOnWriteArrayList<>();
    private volatile String requestId;

    /**
     * @param script     the script's text, or null for none
     * @param bootIdFile the boot id file ({@link BootBuild#BOOT_ID}; tests use their own)
     */
    public BootScript(String script, BuildManager builds, ServiceSupervisor services, Path stateDir, Path bootIdFile,
                      Supplier<BuildUser> user) {
        this.script = script == null || script.isBlank() ? null : script;
        this.builds = builds;
        this.services = services;
        this.stateDir = stateDir;
        this.bootIdFile = bootIdFile;
        this.user = user;
    }

    /** Whether a boot script is configured. */
    public boolean present() {
        return script != null;
    }

    /**
     * Runs the boot script unless it already ran in this boot, then the services once it succeeds;
     * without a boot script, starts the services at once.
     *
     * @param failedMounts mount points whose boot mount failed, each with its error message
     */
    public void run(Map<Path, String> failedMounts) {
        if (script == null) {
            services.startAll();
            return;
        }
        if (!failedMounts.isEmpty()) {
            notStarted("the boot mount of " + failedMounts.keySet().iterator().next() + " failed ("
                    + failedMounts.values().iterator().next() + ")");
            return;
        }
        String bootId;
        try {
            bootId = Files.readString(bootIdFile, StandardCharsets.US_ASCII).strip();
        } catch (IOException e) {
            notStarted("cannot read the boot id from " + bootIdFile + " (" + e.getMessage()
                    + "); without it an agent restart could run the script twice");
            return;
        }
        requestId = "boot-script:" + bootId;
        Optional<BuildRecord> earlier = builds.byRequestId(requestId);
        BuildRecord record;
        if (earlier.isPresent()) {
            record = earlier.get();
            LOG.info("boot script: already run in this boot as {} ({}); not running it again", record.id(),
                    record.state().name().toLowerCase(Locale.ROOT));
        } else {
            try {
                BuildUser u = user.get();
                Path work = WorkDirectory.prepare(stateDir, u);
                Path file = write(u);
                BuildSpec spec = new BuildSpec(work, false, List.of(), List.of(), List.of("/bin/sh", file.toString()),
                        ServiceSupervisor.environment(services.labels()), false, requestId,
                        Map.of(BootBuild.LABEL, "true", LABEL, "true"));
                record = builds.start(spec);
                LOG.info("boot script: started {} in {}", record.id(), work);
            } catch (IOException | RuntimeException e) {
                requestId = null;
                notStarted(e.getMessage() == null ? e.toString() : e.getMessage());
                return;
            }
        }
        String id = record.id();
        // Runs when the build's log closes, after its record says how it ended (at once if it has).
        builds.log(id).whenEnded(() -> ended(builds.get(id)));
    }

    /**
     * Writes the script where only root can change it and only root and the build user's group can
     * read it (it may hold a token): temp file, then an atomic rename.
     */
    private Path write(BuildUser u) throws IOException {
        Path dir = stateDir.resolve("boot-script");
        if (!Files.isDirectory(dir, LinkOption.NOFOLLOW_LINKS)) {
            Files.createDirectories(dir);
        }
        Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwxr-x---"));
        Path file = dir.resolve("script");
        Path tmp = dir.resolve("script.tmp");
        Files.deleteIfExists(tmp);
        Files.createFile(tmp, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-r-----")));
        try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.WRITE, LinkOption.NOFOLLOW_LINKS)) {
            ch.write(java.nio.ByteBuffer.wrap(script.getBytes(StandardCharsets.UTF_8)));
            ch.force(true);
        }
        if (BuildUser.agentIsRoot()) {
            Files.setAttribute(dir, "unix:gid", u.gid(), LinkOption.NOFOLLOW_LINKS);
            Files.setAttribute(tmp, "unix:gid", u.gid(), LinkOption.NOFOLLOW_LINKS);
        }
        Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        return file;
    }

    private void ended(BuildRecord r) {
        if (r.state() == BuildState.SUCCEEDED) {
            LOG.info("boot script {} succeeded; starting the services", r.id());
            services.startAll();
            return;
        }
        String how = switch (r.state()) {
            case FAILED -> r.exitCode() == null ? "failed" : "failed with exit status " + r.exitCode();
            case CANCELLED -> "was cancelled";
            case INTERRUPTED -> "was interrupted by an agent restart";
            default -> r.state().name().toLowerCase(Locale.ROOT);
        };
        String names = String.join(", ", services.commandNames());
        String problem = "boot script " + r.id() + " " + how + (names.isEmpty() ? "" : "; services not started: " + names)
                + " (kiln logs boot)";
        LOG.error(problem);
        problems.add(problem);
        services.failAll("the boot script " + how);
    }

    /** Records that the boot script did not run in this boot and gives up the services. */
    public void notStarted(String why) {
        if (script == null) {
            services.failAll("not started: " + why);
            return;
        }
        String problem = "boot script not run: " + why;
        LOG.error(problem);
        problems.add(problem);
        services.failAll("the boot script did not run");
    }

    /** The boot script's build in this boot, if it was started. */
    public Optional<BuildRecord> record() {
        String id = requestId;
        return id == null ? Optional.empty() : builds.byRequestId(id);
    }

    /** What went wrong with the boot script in this boot, one message each; empty when all is well. */
    public List<String> problems() {
        return List.copyOf(problems);
    }
}
