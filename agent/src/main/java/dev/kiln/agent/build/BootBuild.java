package dev.kiln.agent.build;

import dev.kiln.agent.config.BootBuildSettings;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CopyOnWriteArrayList;

/**
 * The build configured in {@code kiln.boot-build}, started once per boot of the machine, after
 * the boot mounts, through {@link BuildManager#start} exactly as a StartBuild request would (same
 * record, log, progress and busy state; label {@code kiln:boot=true}). Its request id is derived
 * from the kernel's boot id, so an agent restarted in the same boot (systemd's Restart=on-failure,
 * a crash) finds the build it already started, whatever became of it, and does not run it again;
 * the next boot of the instance runs it anew.
 *
 * <p>It is not started when the boot mount holding its work tree failed, or its settings cannot
 * be used (no such directory, unreadable profiles-dir): the reason is logged and kept in
 * {@link #errors()}, which ListBuilds and Status report.
 */
public final class BootBuild {

    /** The label every boot build carries. */
    public static final String LABEL = "kiln:boot";
    /** Where Linux keeps the id of the current boot (a new random UUID at every boot). */
    public static final Path BOOT_ID = Path.of("/proc/sys/kernel/random/boot_id");

    private static final Logger LOG = LoggerFactory.getLogger(BootBuild.class);

    private final BuildManager builds;
    private final BootBuildSettings settings;
    private final Path bootIdFile;
    private final List<String> errors = new CopyOnWriteArrayList<>();

    /**
     * @param builds     the agent's build manager
     * @param settings   {@code kiln.boot-build}
     * @param bootIdFile the boot id file ({@link #BOOT_ID}; tests use their own)
     */
    public BootBuild(BuildManager builds, BootBuildSettings settings, Path bootIdFile) {
        this.builds = builds;
        this.settings = settings;
        this.bootIdFile = bootIdFile;
    }

    /**
     * Starts the boot build unless it already ran in this boot or cannot run.
     *
     * @param failedMounts mount points whose boot mount failed, each with its error message
     * @return the build (new, or the one already started in this boot), or empty
     */
    public Optional<BuildRecord> run(Map<Path, String> failedMounts) {
        if (!settings.present()) {
            return Optional.empty();
        }
        Path tree = Path.of(settings.workTree()).normalize();
        for (Map.Entry<Path, String> failed : failedMounts.entrySet()) {
            if (tree.startsWith(failed.getKey())) {
                return refuse("boot build in " + tree + " not started: its work tree is on " + failed.getKey()
                        + ", whose " + failed.getValue() + "; fix the volume (kiln volumes, kiln mount), then run the build"
                        + " with kiln build");
            }
        }
        String bootId;
        try {
            bootId = Files.readString(bootIdFile, StandardCharsets.US_ASCII).strip();
        } catch (IOException e) {
            return refuse("boot build in " + tree + " not started: cannot read the boot id from " + bootIdFile + " ("
                    + e.getMessage() + "); without it an agent restart could run the build twice");
        }
        String requestId = "boot:" + bootId;
        Optional<BuildRecord> earlier = builds.byRequestId(requestId);
        if (earlier.isPresent()) {
            LOG.info("boot build: already started in this boot as {} ({}); not starting it again", earlier.get().id(),
                    earlier.get().state().name().toLowerCase(java.util.Locale.ROOT));
            return earlier;
        }
        try {
            List<BuildSpec.Profile> definitions = settings.profilesDir() == null ? List.of()
                    : TupProfiles.read(Path.of(settings.profilesDir()));
            Map<String, String> labels = new LinkedHashMap<>(settings.labels() == null ? Map.of() : settings.labels());
            labels.put(LABEL, "true");
            boolean tup = settings.command() == null || settings.command().isEmpty();
            BuildSpec spec = new BuildSpec(tree, tup, tup && settings.profiles() != null ? settings.profiles() : List.of(),
                    definitions, tup ? List.of() : settings.command(), Map.of(), false, requestId, labels);
            BuildRecord record = builds.start(spec);
            LOG.info("boot build: started {} in {} ({})", record.id(), tree,
                    tup ? ("tup " + String.join(" ", spec.profiles())).strip() : String.join(" ", spec.argv()));
            return Optional.of(record);
        } catch (IOException | RuntimeException e) {
            return refuse("boot build in " + tree + " not started: " + (e.getMessage() == null ? e.toString() : e.getMessage()));
        }
    }

    /** Why the boot build was not started in this boot; empty when it was, or none is configured. */
    public List<String> errors() {
        return List.copyOf(errors);
    }

    /** Records that the boot build could not start (an agent in degraded mode does not try). */
    public void notStarted(String why) {
        if (settings.present()) {
            refuse("boot build in " + Path.of(settings.workTree()).normalize() + " not started: " + why);
        }
    }

    private Optional<BuildRecord> refuse(String message) {
        LOG.error(message);
        errors.add(message);
        return Optional.empty();
    }
}
