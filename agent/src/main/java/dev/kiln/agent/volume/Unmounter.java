package dev.kiln.agent.volume;

import dev.kiln.os.OsCommand;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.stream.Collectors;

/**
 * Unmounts honestly: asks the {@link MountUsers} (builds, SSH sessions) to stop their use of the
 * mount, sends TERM and, after the grace period, KILL to every remaining process that holds a
 * file, working directory, root, executable or mapping on it, syncs that one filesystem,
 * unmounts, and confirms in {@code /proc/self/mountinfo} that it is gone. Never lazy, never
 * forced: if it stays busy, it stays mounted and the error names the processes.
 *
 * <p>The agent never signals itself or its ancestors; if one of them holds the mount, the
 * unmount is refused before anything is stopped.
 */
public final class Unmounter {

    private static final Logger LOG = LoggerFactory.getLogger(Unmounter.class);
    private static final Duration POLL = Duration.ofMillis(100);
    private static final Duration AFTER_KILL = Duration.ofSeconds(5);

    private final DiskTools tools;
    private final MountTable mounts;
    private final MountRegistry registry;
    private final ProcessTable processes;
    private final List<MountUsers> users;
    private final Freezer freezer;
    private final Duration defaultGrace;
    private final Object lock;

    /**
     * @param tools        the OS
     * @param mounts       the kernel's mount table
     * @param registry     the mounts Kiln made
     * @param processes    finds and signals holders
     * @param users        builds, SSH sessions: asked first
     * @param freezer      a frozen mount is never unmounted
     * @param defaultGrace time between TERM and KILL when the request does not say
     * @param lock         serialises changes to mounts
     */
    public Unmounter(DiskTools tools, MountTable mounts, MountRegistry registry, ProcessTable processes,
                     List<MountUsers> users, Freezer freezer, Duration defaultGrace, Object lock) {
        this.tools = tools;
        this.mounts = mounts;
        this.registry = registry;
        this.processes = processes;
        this.users = List.copyOf(users);
        this.freezer = freezer;
        this.defaultGrace = defaultGrace;
        this.lock = lock;
    }

    /**
     * Unmounts a mount Kiln made. Idempotent: a path with nothing mounted succeeds with
     * {@code wasMounted == false}.
     *
     * @throws VolumeNotFoundException something is mounted there, but not by Kiln
     * @throws VolumeRefusedException  it is frozen, or other mounts depend on it
     * @throws MountBusyException      it stayed busy; it is still mounted
     */
    public UnmountResult unmount(Path mountPoint, Duration grace) throws IOException {
        if (mountPoint == null || mountPoint.toString().isEmpty() || !mountPoint.isAbsolute()
                || !mountPoint.normalize().equals(mountPoint)) {
            throw new IllegalArgumentException("the mount point must be an absolute path without '.' or '..': " + mountPoint);
        }
        Duration g = grace == null || grace.isZero() || grace.isNegative() ? defaultGrace : grace;
        Path mp = mountPoint;
        synchronized (lock) {
            List<MountTable.Entry> table = mounts.read();
            Optional<MountTable.Entry> here = table.stream().filter(e -> e.mountPoint().equals(mp)).reduce((a, b) -> b);
            Optional<KilnMount> ours = registry.get(mp);
            if (here.isEmpty()) {
                if (ours.isPresent()) {
                    registry.remove(mp);
                }
                return new UnmountResult(false, List.of());
            }
            MountTable.Entry entry = here.get();
            if (ours.isEmpty()) {
                throw new VolumeNotFoundException(mp + " is mounted (" + entry.type() + " from " + entry.source()
                        + ") but not by Kiln; Kiln unmounts only the mounts it made");
            }
            Optional<Instant> frozenUntil = freezer.frozenUntil(mp);
            if (frozenUntil.isPresent()) {
                throw new VolumeRefusedException(mp + " is frozen for a snapshot until " + frozenUntil.get()
                        + "; thaw it first (kiln thaw " + mp + "); it stays mounted");
            }
            checkDependents(mp, table);

            List<Holder> first = processes.holders(entry.number(), mp);
            List<Holder> untouchable = first.stream().filter(Unmounter::untouchable).toList();
            if (!untouchable.isEmpty()) {
                throw new MountBusyException(mp + " is busy and stays mounted: " + describe(untouchable)
                        + (untouchable.size() == 1 ? " holds" : " hold") + " files on it and "
                        + (untouchable.size() == 1 ? "is" : "are") + " the agent itself or its parent, which Kiln never"
                        + " signals; nothing was stopped", untouchable);
            }

            List<String> stopped = new ArrayList<>();
            for (MountUsers u : users) {
                stopped.addAll(u.release(mp, g));
            }
            stopped.addAll(stopHolders(entry.number(), mp, g));

            OsCommand.Result sync = tools.syncFilesystem(mp);
            if (!sync.ok()) {
                LOG.warn("sync -f {} failed: {}", mp, sync.describe());
            }
            OsCommand.Result r = tools.umount(mp);
            if (!r.ok()) {
                List<Holder> left = processes.holders(entry.number(), mp);
                if (!left.isEmpty()) {
                    throw new MountBusyException(mp + " is still busy after TERM and KILL and stays mounted: "
                            + describe(left) + (left.size() == 1 ? " holds" : " hold") + " files on it (umount: "
                            + r.said() + ")", left);
                }
                throw new MountBusyException(mp + " could not be unmounted and stays mounted (umount: " + r.said()
                        + "); no process holds files on it, so something in the kernel does (a loop device, swap file or"
                        + " bind mount on it)",
                        List.of());
            }
            Optional<MountTable.Entry> after = mounts.at(mp);
            if (after.isPresent() && after.get().number().equals(entry.number())) {
                throw new IOException("umount reported success, but /proc/self/mountinfo still shows " + mp);
            }
            registry.remove(mp);
            LOG.info("unmounted {} ({}){}", mp, entry.source(), stopped.isEmpty() ? "" : "; stopped " + String.join(", ", stopped));
            return new UnmountResult(true, stopped);
        }
    }

    /** Mounts below this one, and overlays with a layer on it, must go first. */
    private static void checkDependents(Path mp, List<MountTable.Entry> table) {
        List<String> below = table.stream().filter(e -> !e.mountPoint().equals(mp) && e.mountPoint().startsWith(mp))
                .map(e -> e.mountPoint().toString()).distinct().toList();
        if (!below.isEmpty()) {
            throw new VolumeRefusedException(mp + " has mounts below it (" + String.join(", ", below)
                    + "); unmount them first; it stays mounted");
        }
        for (MountTable.Entry e : table) {
            if (!e.type().equals("overlay")) {
                continue;
            }
            List<String> layers = new ArrayList<>();
            for (String key : List.of("lowerdir", "upperdir", "workdir")) {
                String v = e.superOptions().get(key);
                if (v != null) {
                    layers.addAll(List.of(v.split(":")));
                }
            }
            for (String layer : layers) {
                if (!layer.isEmpty() && Path.of(layer).startsWith(mp)) {
                    throw new VolumeRefusedException(mp + " holds a layer (" + layer + ") of the overlay at "
                            + e.mountPoint() + "; unmount " + e.mountPoint() + " first; it stays mounted");
                }
            }
        }
    }

    private List<String> stopHolders(String device, Path mp, Duration grace) {
        List<String> stopped = new ArrayList<>();
        List<Holder> holders = processes.holders(device, mp);
        if (holders.isEmpty()) {
            return stopped;
        }
        for (Holder h : holders) {
            if (processes.signal(h, false)) {
                LOG.info("sent TERM to {}, which holds {} ({})", h.describe(), mp, h.how());
            }
        }
        Set<Long> termed = holders.stream().map(Holder::pid).collect(Collectors.toSet());
        List<Holder> left = waitForRelease(device, mp, grace);
        Set<Long> killed = new HashSet<>();
        for (Holder h : left) {
            if (untouchable(h)) {
                continue;
            }
            if (processes.signal(h, true)) {
                killed.add(h.pid());
                LOG.info("sent KILL to {}, which still holds {} after {}", h.describe(), mp, SysfsVolumes.text(grace));
            }
        }
        if (!killed.isEmpty()) {
            waitForRelease(device, mp, AFTER_KILL);
        }
        for (Holder h : holders) {
            stopped.add(h.pid() + " " + h.command() + (killed.contains(h.pid()) ? " (KILL)" : " (TERM)"));
        }
        for (Holder h : left) {
            if (killed.contains(h.pid()) && !termed.contains(h.pid())) {
                stopped.add(h.pid() + " " + h.command() + " (KILL)");
            }
        }
        return stopped;
    }

    /** Polls until nobody holds the mount or the time is up; returns who still does. */
    private List<Holder> waitForRelease(String device, Path mp, Duration limit) {
        Instant giveUp = Instant.now().plus(limit);
        List<Holder> left = processes.holders(device, mp);
        while (!left.isEmpty() && Instant.now().isBefore(giveUp)) {
            try {
                Thread.sleep(POLL.toMillis());
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                break;
            }
            left = processes.holders(device, mp);
        }
        return left;
    }

    /** The agent itself, its ancestors and init are never signalled. */
    static boolean untouchable(Holder h) {
        if (h.pid() <= 1) {
            return true;
        }
        Optional<ProcessHandle> p = Optional.of(ProcessHandle.current());
        while (p.isPresent()) {
            if (p.get().pid() == h.pid()) {
                return true;
            }
            p = p.get().parent();
        }
        return false;
    }

    private static String describe(List<Holder> holders) {
        return holders.stream().map(Holder::describe).collect(Collectors.joining(", "));
    }
}
