package dev.kiln.agent.volume;

import dev.kiln.os.OsCommand;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;

/**
 * Freezes filesystems for snapshots, only under a lease: when the lease runs out the agent thaws
 * by itself, whether or not the caller is still there. Thawing never waits for other volume
 * work (it takes no shared lock), so a lease always ends on time.
 *
 * <p>Refused: {@code /}, anything not mounted, mounts Kiln did not make, overlays (overlayfs
 * cannot be frozen; freeze the volumes under it), the filesystem holding the agent's own state
 * (the agent would block on its own log), and a device whose identity changed.
 */
public final class Freezer implements AutoCloseable {

    private static final Logger LOG = LoggerFactory.getLogger(Freezer.class);
    private static final Path ROOT = Path.of("/");

    private final DiskTools tools;
    private final MountTable mounts;
    private final MountRegistry registry;
    private final SysfsVolumes volumes;
    private final Clock clock;
    private final LeaseTimer timer;
    private final Duration defaultLease;
    private final Duration maxLease;
    private final Path stateDir;
    private final Object lock;

    private final Map<Path, Frozen> frozen = new HashMap<>();
    private final Map<String, Instant> answers = new LinkedHashMap<>() {
        @Override
        protected boolean removeEldestEntry(Map.Entry<String, Instant> eldest) {
            return size() > 256;
        }
    };

    private record Frozen(Instant thawBy, Runnable cancel, Object token) {
    }

    /**
     * @param tools        the OS
     * @param mounts       the kernel's mount table
     * @param registry     the mounts Kiln made
     * @param volumes      identity, re-verified before freezing
     * @param clock        time source
     * @param timer        ends leases
     * @param defaultLease the lease when the request gives none (30 s)
     * @param maxLease     the longest lease allowed
     * @param stateDir     the agent's state directory (its filesystem is never frozen)
     * @param lock         serialises freezing with mounting and unmounting
     */
    public Freezer(DiskTools tools, MountTable mounts, MountRegistry registry, SysfsVolumes volumes, Clock clock,
                   LeaseTimer timer, Duration defaultLease, Duration maxLease, Path stateDir, Object lock) {
        this.tools = tools;
        this.mounts = mounts;
        this.registry = registry;
        this.volumes = volumes;
        this.clock = clock;
        this.timer = timer;
        this.defaultLease = defaultLease;
        this.maxLease = maxLease;
        this.stateDir = stateDir;
        this.lock = lock;
    }

    /**
     * Freezes the filesystem at {@code mountPoint} until {@code lease} has passed (or it is thawed).
     * Freezing a mount Kiln already froze extends its lease. A repeated request id returns the
     * first answer and does nothing else.
     *
     * @return when the agent will thaw it by itself
     */
    public Instant freeze(Path mountPoint, Duration lease, String requestId) throws IOException {
        Duration l = lease == null || lease.isZero() ? defaultLease : lease;
        if (l.isNegative()) {
            throw new IllegalArgumentException("the freeze lease must not be negative");
        }
        if (l.compareTo(maxLease) > 0) {
            throw new IllegalArgumentException("a freeze lease of " + SysfsVolumes.text(l) + " is longer than the maximum of "
                    + SysfsVolumes.text(maxLease) + " (kiln.volumes.freeze-max-lease)");
        }
        Path mp = absolute(mountPoint);
        String id = requestId == null ? "" : requestId;
        synchronized (this) {
            if (!id.isEmpty() && answers.containsKey(id)) {
                return answers.get(id);
            }
        }
        if (mp.equals(ROOT)) {
            throw new VolumeRefusedException("refusing to freeze /: the root filesystem holds the system and the agent;"
                    + " freeze a data volume instead; nothing was frozen");
        }
        synchronized (lock) {
            MountTable.Entry entry = mounts.at(mp).orElseThrow(() ->
                    new VolumeRefusedException(mp + " is not mounted; nothing was frozen"));
            KilnMount km = registry.get(mp).orElseThrow(() -> new VolumeRefusedException(mp + " is mounted ("
                    + entry.type() + " from " + entry.source() + ") but not by Kiln; Kiln freezes only volumes it mounted;"
                    + " nothing was frozen"));
            if (km.overlay()) {
                throw new VolumeRefusedException(mp + " is an overlay work tree, which cannot be frozen; freeze the volumes"
                        + " that hold " + km.lowerDir() + " and " + km.upperDir() + " instead; nothing was frozen");
            }
            if (holdsStateDir(mp, entry)) {
                throw new VolumeRefusedException(mp + " holds the agent's state directory " + stateDir
                        + "; freezing it would block the agent's own writes; nothing was frozen");
            }
            Optional<BlockDevice> now = volumes.byNumber(entry.number());
            if (now.isEmpty() || !now.get().name().equals(km.deviceName()) || !now.get().volumeId().equals(km.volumeId())) {
                throw new VolumeRefusedException("the device mounted at " + mp + " is " + now.map(BlockDevice::describe)
                        .orElse("device " + entry.number()) + ", not the volume Kiln mounted there (" + km.device()
                        + (km.volumeId().isEmpty() ? "" : ", " + km.volumeId()) + "); nothing was frozen");
            }
            synchronized (this) {
                Frozen f = frozen.get(mp);
                if (f != null) {
                    f.cancel().run();
                    Instant thawBy = clock.instant().plus(l);
                    Object token = new Object();
                    frozen.put(mp, new Frozen(thawBy, timer.schedule(() -> expire(mp, token), l), token));
                    remember(id, thawBy);
                    LOG.info("{} stays frozen; lease extended until {}", mp, thawBy);
                    return thawBy;
                }
            }
            OsCommand.Result r = tools.freeze(mp);
            if (!r.ok()) {
                if (r.said().contains("Device or resource busy")) {
                    throw new VolumeRefusedException(mp + " is already frozen by something other than Kiln ("
                            + r.said() + "); Kiln will not put a lease on a freeze it does not own; nothing was changed");
                }
                throw new IOException("freezing " + mp + " failed: " + r.describe());
            }
            synchronized (this) {
                Instant thawBy = clock.instant().plus(l);
                Object token = new Object();
                frozen.put(mp, new Frozen(thawBy, timer.schedule(() -> expire(mp, token), l), token));
                remember(id, thawBy);
                LOG.info("froze {} ({}) for a snapshot; the agent thaws it by {} at the latest", mp, km.device(), thawBy);
                return thawBy;
            }
        }
    }

    /**
     * Thaws now. Idempotent: a thawed filesystem stays as it is.
     *
     * @return whether it was frozen
     * @throws VolumeNotFoundException when nothing is mounted there
     */
    public boolean thaw(Path mountPoint) throws IOException {
        Path mp = absolute(mountPoint);
        Frozen f;
        synchronized (this) {
            f = frozen.remove(mp);
        }
        if (f != null) {
            f.cancel().run();
        }
        if (mounts.at(mp).isEmpty()) {
            throw new VolumeNotFoundException(mp + " is not mounted");
        }
        boolean was = thawNow(mp);
        if (was) {
            LOG.info("thawed {}", mp);
        }
        return was || f != null;
    }

    /** When Kiln will thaw this mount by itself, if Kiln froze it. */
    public synchronized Optional<Instant> frozenUntil(Path mountPoint) {
        return Optional.ofNullable(frozen.get(mountPoint)).map(Frozen::thawBy);
    }

    /**
     * Thaws every mount Kiln made. At start-up this releases anything a crashed agent left
     * frozen; at shutdown it makes sure no freeze outlives the agent.
     */
    public void thawAll() {
        synchronized (this) {
            frozen.values().forEach(f -> f.cancel().run());
            frozen.clear();
        }
        for (KilnMount m : registry.all()) {
            if (m.overlay()) {
                continue;
            }
            try {
                if (mounts.at(m.mountPoint()).isPresent() && thawNow(m.mountPoint())) {
                    LOG.warn("thawed {}, which was left frozen", m.mountPoint());
                }
            } catch (IOException e) {
                LOG.error("could not thaw {}: {}", m.mountPoint(), e.getMessage());
            }
        }
    }

    @Override
    public void close() {
        thawAll();
    }

    private void expire(Path mp, Object token) {
        synchronized (this) {
            Frozen f = frozen.get(mp);
            if (f == null || f.token() != token) {
                return; // thawed or extended meanwhile
            }
            frozen.remove(mp);
        }
        // Thaw first, log after: nothing may stand between the lease and the thaw.
        for (int attempt = 1; attempt <= 5; attempt++) {
            try {
                thawNow(mp);
                LOG.info("the freeze lease on {} ran out; thawed it", mp);
                return;
            } catch (IOException e) {
                LOG.error("thawing {} after its lease failed (attempt {}): {}", mp, attempt, e.getMessage());
                try {
                    Thread.sleep(200);
                } catch (InterruptedException ie) {
                    Thread.currentThread().interrupt();
                    return;
                }
            }
        }
    }

    /** @return true if it was frozen; false if it was not (fsfreeze says "Invalid argument") */
    private boolean thawNow(Path mp) throws IOException {
        OsCommand.Result r = tools.thaw(mp);
        if (r.ok()) {
            return true;
        }
        if (r.said().contains("Invalid argument")) {
            return false;
        }
        throw new IOException("thawing " + mp + " failed: " + r.describe());
    }

    private boolean holdsStateDir(Path mp, MountTable.Entry entry) {
        if (stateDir == null) {
            return false;
        }
        Path s = stateDir.toAbsolutePath().normalize();
        if (s.startsWith(mp)) {
            return true;
        }
        try {
            long dev = (Long) Files.getAttribute(s, "unix:dev");
            return DeviceNumbers.text(dev).equals(entry.number());
        } catch (IOException | RuntimeException e) {
            return false;
        }
    }

    private void remember(String id, Instant thawBy) {
        if (!id.isEmpty()) {
            answers.put(id, thawBy);
        }
    }

    private static Path absolute(Path p) {
        if (p == null || p.toString().isEmpty()) {
            throw new IllegalArgumentException("the mount point is required (an absolute path)");
        }
        if (!p.isAbsolute() || !p.normalize().equals(p)) {
            throw new IllegalArgumentException("the mount point must be an absolute path without '.' or '..': " + p);
        }
        return p;
    }
}
