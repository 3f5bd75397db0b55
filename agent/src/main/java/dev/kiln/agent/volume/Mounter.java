package dev.kiln.agent.volume;

import dev.kiln.os.OsCommand;
import dev.kiln.agent.fs.Beneath;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import java.util.function.Supplier;
import java.util.stream.Stream;

/**
 * Mounts volumes: finds the device by identity, formats it only if it looks BLANK, something
 * proves it blank ({@link BlankProver}) and the request allows it, checks an existing ext4
 * filesystem, mounts with hardened options, grows the filesystem when the volume was enlarged,
 * and assembles overlay work trees. Every refusal
 * happens before anything is written to the device, and its message says so.
 *
 * <p>Identity is verified again right before mkfs and right before mount (the device could have
 * been detached and another attached under the same name in the meantime).
 *
 * <p>When only reading the whole device can prove it blank, the read runs without the volume lock
 * (it may take an hour), and the mount then starts over, every check again, with the read in hand.
 */
public final class Mounter {

    private static final Logger LOG = LoggerFactory.getLogger(Mounter.class);

    private final SysfsVolumes volumes;
    private final FormatDecider decider;
    private final BlankProver prover;
    private final DiskTools tools;
    private final MountTable mounts;
    private final MountRegistry registry;
    private final Supplier<Owner> owner;
    private final Duration defaultWait;
    private final Path stateDir;
    private final Object lock;

    /**
     * @param volumes     identity
     * @param decider     the format decision
     * @param prover      the proof that a blank-looking device is blank
     * @param tools       the OS
     * @param mounts      the kernel's mount table
     * @param registry    the mounts Kiln made
     * @param owner       who owns a new filesystem's root (the build user); resolved only when formatting
     * @param defaultWait how long to wait for a device when the request does not say
     * @param stateDir    the agent's state directory, which no mount may hide
     * @param lock        serialises changes to mounts (shared with unmount and freeze)
     */
    public Mounter(SysfsVolumes volumes, FormatDecider decider, BlankProver prover, DiskTools tools, MountTable mounts,
                   MountRegistry registry, Supplier<Owner> owner, Duration defaultWait, Path stateDir, Object lock) {
        this.volumes = volumes;
        this.decider = decider;
        this.prover = prover;
        this.tools = tools;
        this.mounts = mounts;
        this.registry = registry;
        this.owner = owner;
        this.defaultWait = defaultWait;
        this.stateDir = stateDir;
        this.lock = lock;
    }

    /**
     * Mounts what the spec asks for. Idempotent: already mounted as requested is a success that
     * does nothing.
     *
     * @throws IllegalArgumentException a malformed request
     * @throws VolumeNotFoundException  the device did not appear within the wait
     * @throws VolumeRefusedException   the device or mount point is not in a state that allows it;
     *                                  the message says what was found and that nothing was written
     * @throws IOException              a tool failed unexpectedly
     */
    public MountResult mount(MountSpec spec) throws IOException {
        spec.validate();
        com.sun.security.auth.module.UnixSystem self = new com.sun.security.auth.module.UnixSystem();
        if (self.getUid() != 0) {
            throw new VolumeRefusedException("mounting needs root, and kiln-agent runs as '" + self.getUsername()
                    + "'; run the agent as root (as systemd does) to mount volumes; nothing was written");
        }
        if (stateDir != null && stateDir.toAbsolutePath().normalize().startsWith(spec.mountPoint())) {
            throw new VolumeRefusedException("mounting at " + spec.mountPoint() + " would hide the agent's state directory "
                    + stateDir + "; choose another mount point; nothing was written");
        }
        if (spec.overlay()) {
            synchronized (lock) {
                return mountOverlay(spec);
            }
        }
        // Waiting for a late device happens outside the lock: other requests go on meanwhile.
        BlockDevice found = volumes.find(spec.ref(), spec.attachWait() == null ? defaultWait : spec.attachWait());
        String looksBlank;
        synchronized (lock) {
            try {
                return mountVolume(spec, found, null);
            } catch (ZerosToRead z) {
                looksBlank = z.looksBlank;
            }
        }
        // Reading a whole volume takes minutes: outside the lock, so snapshots' freezes and other
        // mounts go on meanwhile. Then every check runs again, with the read as the proof.
        BlankProver.ZeroRead read = prover.readAll(found, looksBlank);
        synchronized (lock) {
            try {
                return mountVolume(spec, found, read);
            } catch (ZerosToRead z) {
                throw new VolumeRefusedException(found.describe() + " changed while it was read in full; nothing was written");
            }
        }
    }

    /** Only reading the whole device is left to prove it blank; nothing was written. */
    private static final class ZerosToRead extends RuntimeException {
        final String looksBlank;

        ZerosToRead(String looksBlank) {
            super(null, null, false, false);
            this.looksBlank = looksBlank;
        }
    }

    private MountResult mountVolume(MountSpec spec, BlockDevice found, BlankProver.ZeroRead read) throws IOException {
        Path mp = spec.mountPoint();
        Filesystem fs = spec.filesystem();
        List<MountTable.Entry> table = mounts.read();
        Optional<MountTable.Entry> here = top(table, mp);
        if (here.isPresent()) {
            MountTable.Entry e = here.get();
            if (!e.number().equals(found.number())) {
                throw new VolumeRefusedException("mount point " + mp + " is in use: " + e.source() + " (" + e.type()
                        + ") is mounted there, not " + found.describe() + "; nothing was written");
            }
            if (!e.type().equals(fs.type())) {
                throw new VolumeRefusedException(found.describe() + " is already mounted at " + mp + " as " + e.type()
                        + ", but " + fs + " was requested; nothing was written");
            }
            requireOptions(e, spec, found.describe());
            KilnMount km = new KilnMount(mp, found.path().toString(), found.name(), found.volumeId(), fs.type(), null, null);
            registry.put(km);
            LOG.info("{} is already mounted at {}; nothing to do", found.describe(), mp);
            return new MountResult(info(found, decider.decide(found.path()), e, false), false, true, false);
        }
        for (MountTable.Entry e : table) {
            if (e.number().equals(found.number())) {
                throw new VolumeRefusedException(found.describe() + " is already mounted at " + e.mountPoint()
                        + "; unmount it there first; nothing was written");
            }
        }
        checkMountPoint(mp);

        Probe probe = decider.decide(found.path());
        boolean formatted = false;
        Owner chownRoot = null; // XFS has no root_owner option: chown its root after mounting
        switch (probe.decision()) {
            case UNKNOWN -> throw new VolumeRefusedException("refusing to use " + found.describe() + ": found "
                    + probe.reason() + "; it is neither provably blank nor a recognised filesystem, so it was not"
                    + " formatted or mounted; nothing was written");
            case HAS_DATA -> {
                if (!probe.filesystem().equals(fs.type())) {
                    throw new VolumeRefusedException(found.describe() + " has " + probe.reason() + ", but " + fs
                            + " was requested; it was not formatted or mounted; nothing was written");
                }
            }
            case BLANK -> {
                if (!spec.allowFormat()) {
                    throw new VolumeRefusedException(found.describe() + " is blank (" + probe.reason()
                            + ") and the request does not allow formatting (kiln mount --format, or format: true in"
                            + " kiln.volumes.mounts); nothing was written");
                }
                Owner who;
                try {
                    who = owner.get();
                } catch (RuntimeException e) {
                    throw new VolumeRefusedException("cannot format " + found.describe() + ": " + e.getMessage()
                            + "; nothing was written");
                }
                BlockDevice now = verified(found, spec.ref());
                Probe again = decider.decide(now.path());
                if (again.decision() != FormatDecision.BLANK) {
                    throw new VolumeRefusedException(found.describe() + " is no longer blank: found " + again.reason()
                            + "; nothing was written");
                }
                BlankProof proof = prover.prove(now, spec, read).orElseThrow(() -> new ZerosToRead(again.reason()));
                LOG.info("formatting {} as {} (label {}): it is blank ({}), proved so: {}", now.describe(), fs,
                        spec.effectiveLabel(), probe.reason(), proof.reason());
                OsCommand.Result r = tools.mkfs(fs, now.path(), spec.effectiveLabel(), who.uid(), who.gid());
                if (!r.ok()) {
                    throw new IOException("formatting " + now.describe() + " failed: " + r.describe());
                }
                formatted = true;
                probe = decider.decide(now.path());
                if (probe.decision() != FormatDecision.HAS_DATA || !probe.filesystem().equals(fs.type())) {
                    throw new IOException("after formatting " + now.describe() + " as " + fs + ", found " + probe.reason());
                }
                if (fs == Filesystem.XFS) {
                    chownRoot = who;
                }
            }
        }
        boolean grown = false;
        if (fs == Filesystem.EXT4 && !formatted) {
            BlockDevice now = verified(found, spec.ref());
            fsck(now, false);
            if (!spec.readOnly()) {
                grown = growExt4(now);
            }
        }
        createMountPoint(mp);
        BlockDevice now = verified(found, spec.ref());
        String options = String.join(",", spec.options());
        OsCommand.Result m = tools.mount(now.path().toString(), mp, fs.type(), options);
        if (!m.ok()) {
            throw new IOException("mounting " + now.describe() + " at " + mp + " failed: " + m.describe());
        }
        MountTable.Entry entry = mounts.at(mp).filter(e -> e.number().equals(now.number()))
                .orElseThrow(() -> new IOException("mount reported success, but /proc/self/mountinfo does not show "
                        + now.describe() + " at " + mp));
        registry.put(new KilnMount(mp, now.path().toString(), now.name(), now.volumeId(), fs.type(), null, null));
        LOG.info("mounted {} ({}) at {} ({})", now.describe(), fs, mp, options);
        if (chownRoot != null) {
            tools.chown(mp, chownRoot.uid(), chownRoot.gid());
        }
        if (fs == Filesystem.XFS && !spec.readOnly() && !formatted) {
            grown = growXfs(now, mp);
        }
        return new MountResult(info(now, probe, entry, false), formatted, false, grown);
    }

    /** fsck.ext4 -a (and -f when forced): 0 clean, 1 errors corrected; anything else is not safe to mount. */
    private void fsck(BlockDevice device, boolean force) throws IOException {
        OsCommand.Result r = tools.fsck(device.path(), force);
        String fsck = "fsck.ext4 -a" + (force ? " -f" : "");
        if ((r.exitCode() & 4) != 0) {
            throw new VolumeRefusedException(fsck + " found problems on " + device.describe()
                    + " that it could not repair automatically (exit " + r.exitCode() + ": " + r.said()
                    + "); it was not mounted; check it by hand with e2fsck");
        }
        if (r.exitCode() > 1) {
            // 8: operational error (e.g. the device is in use elsewhere), 16: usage, 32: cancelled, 128: library.
            throw new VolumeRefusedException(fsck + " could not check " + device.describe() + " (exit " + r.exitCode()
                    + ": " + r.said() + "); it was not mounted");
        }
        if (r.exitCode() == 1) {
            LOG.warn("fsck.ext4 -a corrected errors on {}: {}", device.describe(), r.said());
        }
    }

    /**
     * Grows ext4 to fill an enlarged volume, before mounting: a forced check, then resize2fs.
     * Offline growing needs no CAP_SYS_RESOURCE and costs nothing when the sizes already match.
     */
    private boolean growExt4(BlockDevice device) throws IOException {
        long before;
        long size;
        try {
            before = tools.ext4Size(device.path());
            size = tools.size(device.path());
        } catch (IOException e) {
            LOG.warn("could not compare the size of {} with its filesystem: {}", device.describe(), e.getMessage());
            return false;
        }
        if (size - before < GROW_THRESHOLD) {
            return false;
        }
        LOG.info("{} is {} bytes, its ext4 filesystem {}: growing it", device.describe(), size, before);
        fsck(device, true);
        OsCommand.Result r = tools.grow(Filesystem.EXT4, device.path(), null);
        if (!r.ok()) {
            LOG.warn("could not grow the filesystem on {} to fill the volume: {}", device.describe(), r.describe());
            return false;
        }
        long after = tools.ext4Size(device.path());
        LOG.info("grew the ext4 filesystem on {} from {} to {} bytes", device.describe(), before, after);
        return after > before;
    }

    /** Grows a mounted xfs filesystem to fill an enlarged volume (xfs grows only online). */
    private boolean growXfs(BlockDevice device, Path mp) {
        try {
            long before = tools.filesystemSize(mp);
            if (tools.size(device.path()) - before < GROW_THRESHOLD) {
                return false;
            }
            OsCommand.Result r = tools.grow(Filesystem.XFS, device.path(), mp);
            if (!r.ok()) {
                LOG.warn("could not grow the filesystem on {} to fill the volume: {}", device.describe(), r.describe());
                return false;
            }
            long after = tools.filesystemSize(mp);
            if (after > before) {
                LOG.info("grew the xfs filesystem at {} from {} to {} bytes to fill {}", mp, before, after, device.describe());
                return true;
            }
        } catch (IOException e) {
            LOG.warn("could not grow the filesystem on {}: {}", device.describe(), e.getMessage());
        }
        return false;
    }

    /** Growing only pays off (and the forced fsck it needs only happens) for at least this much. */
    private static final long GROW_THRESHOLD = 8L << 20;

    private MountResult mountOverlay(MountSpec spec) throws IOException {
        Path mp = spec.mountPoint();
        Path lower = spec.lowerDir();
        Path upper = spec.upperDir();
        Path work = upper.resolveSibling("." + upper.getFileName() + ".kiln-work");
        List<MountTable.Entry> table = mounts.read();
        Optional<MountTable.Entry> here = top(table, mp);
        if (here.isPresent()) {
            MountTable.Entry e = here.get();
            if (e.type().equals("overlay") && lower.toString().equals(e.superOptions().get("lowerdir"))
                    && upper.toString().equals(e.superOptions().get("upperdir"))) {
                requireOptions(e, spec, "the overlay");
                registry.put(new KilnMount(mp, "", "", "", "overlay", lower, upper));
                return new MountResult(overlayInfo(mp, lower, upper, e), false, true, false);
            }
            throw new VolumeRefusedException("mount point " + mp + " is in use: " + e.source() + " (" + e.type()
                    + ") is mounted there; nothing was mounted");
        }
        if (!Files.isDirectory(lower, LinkOption.NOFOLLOW_LINKS)) {
            throw new VolumeRefusedException("the overlay's lower directory " + lower + " is not a directory"
                    + " (is the sources volume mounted?); nothing was mounted");
        }
        if (top(table, upper).isPresent()) {
            throw new VolumeRefusedException("the overlay's upper directory " + upper + " is itself a mount point;"
                    + " use a directory inside the builds volume (e.g. " + upper.resolve("tree")
                    + "), because overlayfs needs a work directory beside it on the same filesystem; nothing was mounted");
        }
        if (!Files.isDirectory(upper.getParent(), LinkOption.NOFOLLOW_LINKS)) {
            throw new VolumeRefusedException("the overlay's upper directory " + upper + " cannot be created: "
                    + upper.getParent() + " is not a directory (is the builds volume mounted?); nothing was mounted");
        }
        checkMountPoint(mp);
        if (Files.isSymbolicLink(upper) || Files.exists(upper) && !Files.isDirectory(upper, LinkOption.NOFOLLOW_LINKS)) {
            throw new VolumeRefusedException("the overlay's upper directory " + upper + " exists and is not a directory;"
                    + " nothing was mounted");
        }
        if (!Files.exists(upper)) {
            Files.createDirectory(upper);
            Owner who = owner.get();
            tools.chown(upper, who.uid(), who.gid());
        }
        if (Files.isSymbolicLink(work)) {
            throw new VolumeRefusedException("the overlay's work directory " + work + " is a symbolic link; nothing was mounted");
        }
        if (!Files.exists(work)) {
            Files.createDirectory(work);
        }
        if (!Files.getAttribute(work, "unix:dev", LinkOption.NOFOLLOW_LINKS)
                .equals(Files.getAttribute(upper, "unix:dev", LinkOption.NOFOLLOW_LINKS))) {
            throw new VolumeRefusedException("the overlay's work directory " + work + " is not on the same filesystem as "
                    + upper + "; nothing was mounted");
        }
        createMountPoint(mp);
        String options = "lowerdir=" + lower + ",upperdir=" + upper + ",workdir=" + work + ","
                + String.join(",", spec.options());
        // The upper directory sits on the builds volume, which the build user may change: hold the
        // checked directory open, and after mounting prove the overlay writes into that one.
        MountTable.Entry entry;
        try (Beneath.Entry held = Beneath.hold(upper.getParent().toRealPath().resolve(upper.getFileName()))) {
            OsCommand.Result m = tools.mount("overlay", mp, "overlay", options);
            if (!m.ok()) {
                throw new IOException("mounting the overlay at " + mp + " failed: " + m.describe());
            }
            entry = mounts.at(mp).filter(e -> e.type().equals("overlay"))
                    .orElseThrow(() -> new IOException("mount reported success, but /proc/self/mountinfo shows no overlay at " + mp));
            // A read-only overlay writes nothing anywhere, so there is nothing to prove.
            if (!spec.options().contains("ro") && !writesInto(mp, held)) {
                OsCommand.Result u = tools.umount(mp);
                throw new VolumeRefusedException("the overlay's upper directory " + upper + " was replaced while it was"
                        + " being mounted (by a link?), so the overlay did not use the directory that was checked; "
                        + (u.ok() ? "it was unmounted again; nothing is mounted" : "unmounting it failed (" + u.describe()
                        + "): unmount " + mp + " by hand"));
            }
        }
        registry.put(new KilnMount(mp, "", "", "", "overlay", lower, upper));
        LOG.info("mounted an overlay work tree at {}: {} (lower, read-only) under {} (upper)", mp, lower, upper);
        return new MountResult(overlayInfo(mp, lower, upper, entry), false, false, false);
    }

    /** Whether a file made at the overlay's root lands in the held upper directory. */
    private static boolean writesInto(Path mp, Beneath.Entry upper) throws IOException {
        String marker = ".kiln-overlay-check-" + java.util.UUID.randomUUID();
        Files.createFile(mp.resolve(marker));
        try {
            return Files.exists(upper.directory().resolve(marker), LinkOption.NOFOLLOW_LINKS);
        } finally {
            Files.delete(mp.resolve(marker));
        }
    }

    /** Re-reads identity and checks the device node, right before writing or mounting. */
    private BlockDevice verified(BlockDevice found, VolumeRef ref) throws IOException {
        BlockDevice now = volumes.verify(found, ref);
        String node;
        try {
            node = tools.blockDeviceNumber(now.path());
        } catch (IOException e) {
            throw new VolumeRefusedException(now.path() + " is not a block device node (" + e.getMessage()
                    + "); nothing was written");
        }
        if (!node.equals(now.number())) {
            throw new VolumeRefusedException(now.path() + " is device " + node + ", but sysfs says " + now.name() + " is "
                    + now.number() + "; nothing was written");
        }
        return now;
    }

    private void requireOptions(MountTable.Entry e, MountSpec spec, String what) {
        boolean same = e.readOnly() == spec.readOnly() && e.options().contains("nodev") && e.options().contains("nosuid")
                && e.options().contains("noexec") == spec.noexec() && e.options().contains("noatime") == spec.noatime();
        if (!same) {
            throw new VolumeRefusedException(what + " is already mounted at " + e.mountPoint() + " with options "
                    + String.join(",", e.options()) + ", not the requested " + String.join(",", spec.options())
                    + "; unmount it first to change them; nothing was written");
        }
    }

    /** The mount point must be a real, empty directory (or not exist yet). */
    private static void checkMountPoint(Path mp) throws IOException {
        if (Files.isSymbolicLink(mp)) {
            throw new VolumeRefusedException("mount point " + mp + " is a symbolic link; refusing to mount through it;"
                    + " nothing was written");
        }
        if (!Files.exists(mp)) {
            Path existing = mp.getParent();
            while (existing != null && !Files.exists(existing)) {
                existing = existing.getParent();
            }
            if (existing != null && !existing.toRealPath().equals(existing)) {
                throw new VolumeRefusedException("mount point " + mp + " lies under " + existing
                        + ", which is or passes through a symbolic link; use the real path " + existing.toRealPath()
                        + "; nothing was written");
            }
            return;
        }
        if (!Files.isDirectory(mp, LinkOption.NOFOLLOW_LINKS)) {
            throw new VolumeRefusedException("mount point " + mp + " exists and is not a directory; nothing was written");
        }
        if (!mp.toRealPath().equals(mp)) {
            throw new VolumeRefusedException("mount point " + mp + " passes through a symbolic link (it is "
                    + mp.toRealPath() + "); use the real path; nothing was written");
        }
        try (Stream<Path> entries = Files.list(mp)) {
            long n = entries.count();
            if (n > 0) {
                throw new VolumeRefusedException("mount point " + mp + " is not empty (" + n + (n == 1 ? " entry" : " entries")
                        + "); mounting over it would hide them; nothing was written");
            }
        }
    }

    private static void createMountPoint(Path mp) throws IOException {
        if (!Files.exists(mp)) {
            Files.createDirectories(mp);
        }
    }

    private static Optional<MountTable.Entry> top(List<MountTable.Entry> table, Path mp) {
        MountTable.Entry top = null;
        for (MountTable.Entry e : table) {
            if (e.mountPoint().equals(mp)) {
                top = e;
            }
        }
        return Optional.ofNullable(top);
    }

    static VolumeInfo info(BlockDevice d, Probe probe, MountTable.Entry mount, boolean frozen) {
        return new VolumeInfo(d.path().toString(), d.volumeId(), d.sizeBytes(), probe.filesystem(), probe.label(),
                mount == null ? null : mount.mountPoint(), mount == null ? List.of() : sorted(mount.options()),
                probe.decision(), probe.reason(), frozen);
    }

    static VolumeInfo overlayInfo(Path mp, Path lower, Path upper, MountTable.Entry mount) {
        return new VolumeInfo("overlay", "", 0, "overlay", "", mp, mount == null ? List.of() : sorted(mount.options()),
                null, "overlay work tree: " + lower + " (lower, read-only) under " + upper + " (upper)", false);
    }

    private static List<String> sorted(java.util.Set<String> options) {
        return options.stream().sorted().toList();
    }
}
