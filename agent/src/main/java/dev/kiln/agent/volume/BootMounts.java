package dev.kiln.agent.volume;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.List;

/**
 * The mounts configured in {@code kiln.volumes.mounts} (agent.yml or user data), done in order at
 * agent start, before the gRPC server accepts requests. A failure is logged and kept (ListVolumes
 * reports it, {@code kiln volumes} prints it); the agent keeps serving, so the operator can see
 * what went wrong and fix it with {@code kiln mount}. A failed mount never formats anything
 * (formatting needs a provably blank device, like any mount), and the mounts after it that
 * depend on it (an overlay over a failed volume) fail too, each with its own message.
 */
public final class BootMounts {

    private static final Logger LOG = LoggerFactory.getLogger(BootMounts.class);

    private final VolumeService volumes;
    private final List<MountSpec> specs;
    private final java.util.Map<java.nio.file.Path, String> failures = new java.util.concurrent.ConcurrentHashMap<>();

    public BootMounts(VolumeService volumes, List<MountSpec> specs) {
        this.volumes = volumes;
        this.specs = List.copyOf(specs);
    }

    /** Mounts each configured volume; returns how many failed. */
    public int run() {
        volumes.thawLeftovers();
        int failed = 0;
        for (int i = 0; i < specs.size(); i++) {
            MountSpec s = specs.get(i);
            String what = s.overlay() ? "overlay " + s.lowerDir() + " + " + s.upperDir() : s.ref().describe();
            String key = "kiln.volumes.mounts[" + i + "]";
            try {
                if (s.overlay()) {
                    // Never let an overlay fall through to the root disk's empty mount point.
                    for (java.nio.file.Path f : failures.keySet()) {
                        if (s.lowerDir().startsWith(f) || s.upperDir().startsWith(f)) {
                            throw new VolumeRefusedException("it needs " + f + ", whose boot mount failed; nothing was mounted");
                        }
                    }
                }
                LOG.info("boot mount {}: {} at {}", key, what, s.mountPoint());
                MountResult r = volumes.mount(s);
                LOG.info("boot mount {}: {} at {}{}{}{}", key, r.alreadyMounted() ? "already mounted" : "mounted",
                        s.mountPoint(), r.formatted() ? " (formatted: it was blank)" : "",
                        r.grown() ? " (grew the filesystem)" : "", s.overlay() ? "" : " from " + r.volume().device());
            } catch (Exception e) {
                failed++;
                String message = "boot mount " + key + " (" + what + " at " + s.mountPoint() + ") failed: "
                        + (e.getMessage() == null ? e.toString() : e.getMessage());
                LOG.error(message);
                volumes.bootFailed(message);
                failures.put(s.mountPoint(), message);
            }
        }
        return failed;
    }

    /** Mount points whose boot mount failed in {@link #run()}, each with its message. */
    public java.util.Map<java.nio.file.Path, String> failures() {
        return java.util.Map.copyOf(failures);
    }
}
