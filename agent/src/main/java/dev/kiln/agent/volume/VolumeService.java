package dev.kiln.agent.volume;

import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CopyOnWriteArrayList;

/**
 * The volume feature as the API sees it: listing, mounting, unmounting, freezing and thawing,
 * plus the errors of boot-time mounts. One lock serialises every change to mounts; thawing
 * stays outside it.
 */
public final class VolumeService implements AutoCloseable {

    private final SysfsVolumes volumes;
    private final FormatDecider decider;
    private final MountTable mounts;
    private final MountRegistry registry;
    private final Mounter mounter;
    private final Unmounter unmounter;
    private final Freezer freezer;
    private final List<String> bootErrors = new CopyOnWriteArrayList<>();

    public VolumeService(SysfsVolumes volumes, FormatDecider decider, MountTable mounts, MountRegistry registry,
                         Mounter mounter, Unmounter unmounter, Freezer freezer) {
        this.volumes = volumes;
        this.decider = decider;
        this.mounts = mounts;
        this.registry = registry;
        this.mounter = mounter;
        this.unmounter = unmounter;
        this.freezer = freezer;
    }

    /** Every whole-disk block device with its identity, contents and mount, then Kiln's overlays. */
    public List<VolumeInfo> list() throws IOException {
        List<MountTable.Entry> table = mounts.read();
        List<VolumeInfo> out = new ArrayList<>();
        for (BlockDevice d : volumes.list()) {
            MountTable.Entry mount = null;
            for (MountTable.Entry e : table) {
                if (e.number().equals(d.number()) && (mount == null || registry.get(e.mountPoint()).isPresent())) {
                    mount = e;
                }
            }
            boolean frozen = mount != null && freezer.frozenUntil(mount.mountPoint()).isPresent();
            out.add(Mounter.info(d, decider.decide(d.path()), mount, frozen));
        }
        for (KilnMount m : registry.all()) {
            if (m.overlay()) {
                Optional<MountTable.Entry> e = table.stream().filter(x -> x.mountPoint().equals(m.mountPoint())
                        && x.type().equals("overlay")).reduce((a, b) -> b);
                if (e.isPresent()) {
                    out.add(Mounter.overlayInfo(m.mountPoint(), m.lowerDir(), m.upperDir(), e.get()));
                }
            }
        }
        return out;
    }

    private final java.util.concurrent.atomic.AtomicInteger inFlight = new java.util.concurrent.atomic.AtomicInteger();

    /** Mount, unmount and freeze operations running now (they keep the agent from being idle). */
    public int operationsInFlight() {
        return inFlight.get();
    }

    public MountResult mount(MountSpec spec) throws IOException {
        inFlight.incrementAndGet();
        try {
            return mounter.mount(spec);
        } finally {
            inFlight.decrementAndGet();
        }
    }

    public UnmountResult unmount(Path mountPoint, Duration grace) throws IOException {
        inFlight.incrementAndGet();
        try {
            return unmounter.unmount(mountPoint, grace);
        } finally {
            inFlight.decrementAndGet();
        }
    }

    /**
     * Unmounts every mount Kiln made, overlays first and deeper mount points before the ones
     * above them (for draining an instance). Each unmount is as honest as {@link #unmount}; a
     * failure is reported and the others are still tried.
     *
     * @param grace time between TERM and KILL for each mount's holders
     * @return one line per mount: "unmounted MP" or "MP: why it stays mounted"
     */
    public List<String> unmountAll(Duration grace) {
        List<KilnMount> order = new ArrayList<>(registry.all());
        order.sort(java.util.Comparator.comparing((KilnMount m) -> !m.overlay())
                .thenComparing(m -> -m.mountPoint().getNameCount()));
        List<String> results = new ArrayList<>();
        for (KilnMount m : order) {
            try {
                UnmountResult r = unmounter.unmount(m.mountPoint(), grace);
                results.add(r.wasMounted() ? "unmounted " + m.mountPoint() : m.mountPoint() + " was not mounted");
            } catch (Exception e) {
                results.add(m.mountPoint() + ": " + e.getMessage());
            }
        }
        return results;
    }

    public Instant freeze(Path mountPoint, Duration lease, String requestId) throws IOException {
        inFlight.incrementAndGet();
        try {
            return freezer.freeze(mountPoint, lease, requestId);
        } finally {
            inFlight.decrementAndGet();
        }
    }

    public boolean thaw(Path mountPoint) throws IOException {
        return freezer.thaw(mountPoint);
    }

    /** The mounts Kiln made (volumes and overlays) that are mounted now. */
    public List<KilnMount> kilnMounts() throws IOException {
        List<MountTable.Entry> table = mounts.read();
        return registry.all().stream().filter(m -> table.stream().anyMatch(e -> e.mountPoint().equals(m.mountPoint())))
                .toList();
    }

    /** When Kiln will thaw this mount by itself, if Kiln froze it and it is still frozen. */
    public Optional<Instant> frozenUntil(Path mountPoint) {
        return freezer.frozenUntil(mountPoint);
    }

    /** Boot-time mounts that failed, one message each (kept for ListVolumes). */
    public List<String> bootErrors() {
        return List.copyOf(bootErrors);
    }

    void bootFailed(String message) {
        bootErrors.add(message);
    }

    /** A start-up problem that follows from a failed boot mount (e.g. SSH not serving); shown with the boot errors. */
    public void reportBootProblem(String message) {
        bootErrors.add(message);
    }

    /** Thaws whatever a previous (crashed) agent left frozen. */
    public void thawLeftovers() {
        freezer.thawAll();
    }

    /** No freeze outlives the agent. */
    @Override
    public void close() {
        freezer.close();
    }
}
