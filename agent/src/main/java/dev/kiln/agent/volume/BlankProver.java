package dev.kiln.agent.volume;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.Locale;
import java.util.Optional;

/**
 * Proves a device blank before it is formatted. {@link FormatDecider}'s BLANK is evidence (no
 * signature, zeros at both edges), not proof: a disk whose partition table was wiped still holds
 * its partitions' filesystems, LVM or RAID members past the first MiB, and looks just like that.
 * Each of these is proof, tried in this order:
 *
 * <ol>
 *   <li><b>created empty</b>: the boot mount says {@code created-empty: true} for the EBS volume
 *       id it names, and the device is that volume (the controller created it with CreateVolume,
 *       without a snapshot, for this launch). It counts once per volume on this instance, recorded
 *       in {@code <state-dir>/volumes/created-empty-used}: user data outlives a reboot, and what
 *       was written to the volume since does not show in it;</li>
 *   <li><b>holes</b>: the device is a loop device whose backing file has no data, only holes, in
 *       the range the device shows ({@code lseek(SEEK_DATA)}), searched on the file the kernel
 *       names by device and inode, after the device's cached writes are flushed into it;</li>
 *   <li><b>zeros</b>: the whole device, read, is all zeros. The read stops at the first non-zero
 *       byte, logs its progress, and is bounded by {@code kiln.volumes.zero-read-timeout} (a
 *       500 GiB gp3 volume at its baseline 125 MiB/s takes over an hour: the price of no proof).</li>
 * </ol>
 *
 * Without a proof nothing is formatted, and the refusal says how to bring one.
 */
public final class BlankProver {

    private static final Logger LOG = LoggerFactory.getLogger(BlankProver.class);

    /** How much of a device is read between looks at the clock. */
    static final int SLICE = 64 << 20;
    /** The longest stretch without a progress line while reading a whole device. */
    static final Duration PROGRESS_EVERY = Duration.ofSeconds(15);

    private static final String HOW = "give proof instead: let kiln launch create the volume (a new ROLE:SIZE volume"
            + " is created empty and its boot mount says created-empty: true), use a sparse image file for a loop"
            + " device, or raise kiln.volumes.zero-read-timeout";
    private static final String NOTHING = "it was not formatted or mounted; nothing was written";

    /**
     * A read of a whole device that found only zeros.
     *
     * @param device the device read, as it was identified before the read
     * @param proof  the ZEROS proof
     */
    record ZeroRead(BlockDevice device, BlankProof proof) {
    }

    private final SysfsVolumes volumes;
    private final DiskTools tools;
    private final Path ledger;
    private final Duration zeroReadTimeout;
    private final Clock clock;

    /**
     * @param volumes         sysfs: which file a loop device reads
     * @param tools           the OS
     * @param stateDir        the agent's state directory, where spent created-empty proofs are kept;
     *                        null: created-empty counts for nothing
     * @param zeroReadTimeout how long reading a whole device may take; zero: never read one
     * @param clock           time source for that bound and for progress
     */
    public BlankProver(SysfsVolumes volumes, DiskTools tools, Path stateDir, Duration zeroReadTimeout, Clock clock) {
        this.volumes = volumes;
        this.tools = tools;
        this.ledger = stateDir == null ? null : stateDir.resolve("volumes").resolve("created-empty-used");
        this.zeroReadTimeout = zeroReadTimeout;
        this.clock = clock;
    }

    /**
     * A proof that needs no full read (created empty, holes), or {@code read} when it is a read of
     * this very device. Call it right before mkfs, after identity was verified.
     *
     * @param device the device as verified just now
     * @param spec   the request (its volume id and created-empty claim)
     * @param read   a full read made meanwhile, or null
     * @return the proof, or empty when only reading the whole device is left
     */
    Optional<BlankProof> prove(BlockDevice device, MountSpec spec, ZeroRead read) {
        Optional<BlankProof> created = createdEmpty(device, spec);
        if (created.isPresent()) {
            return created;
        }
        if (read != null && read.device().name().equals(device.name()) && read.device().number().equals(device.number())
                && read.device().volumeId().equals(device.volumeId())) {
            return Optional.of(read.proof());
        }
        return holes(device);
    }

    private Optional<BlankProof> createdEmpty(BlockDevice device, MountSpec spec) {
        String id = spec.ref().volumeId();
        if (!spec.createdEmpty() || id.isEmpty() || !id.equals(device.volumeId())) {
            return Optional.empty();
        }
        if (ledger == null) {
            LOG.warn("{}: created-empty is not taken as proof: the agent has no state directory to record its use",
                    device.describe());
            return Optional.empty();
        }
        synchronized (this) {
            try {
                if (Files.exists(ledger) && Files.readAllLines(ledger, StandardCharsets.UTF_8).contains(id)) {
                    LOG.info("{}: its created-empty proof was used on this instance before (it may have been written"
                            + " since); looking for another proof", device.describe());
                    return Optional.empty();
                }
                // Recorded before mkfs, so a crash after this point can never make the claim count twice.
                Files.createDirectories(ledger.getParent());
                try (FileChannel ch = FileChannel.open(ledger, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                        StandardOpenOption.APPEND)) {
                    ch.write(ByteBuffer.wrap((id + "\n").getBytes(StandardCharsets.UTF_8)));
                    ch.force(true);
                }
            } catch (IOException e) {
                LOG.warn("{}: created-empty is not taken as proof: its use cannot be recorded in {}: {}",
                        device.describe(), ledger, e.getMessage());
                return Optional.empty();
            }
        }
        return Optional.of(new BlankProof(BlankProof.Kind.CREATED_EMPTY, "the controller created " + id
                + " empty for this launch (created-empty in its boot mount)"));
    }

    private Optional<BlankProof> holes(BlockDevice device) {
        Optional<Path> file = volumes.loopBackingFile(device);
        if (file.isEmpty()) {
            return Optional.empty();
        }
        try {
            // Writes to the device may still sit in its page cache, not yet in the file.
            tools.flush(device.path());
            DiskTools.LoopBacking backing = tools.loopBacking(device.path());
            long size = tools.size(device.path());
            long data = tools.firstData(file.get(), backing, backing.offset());
            if (data < 0 || data >= backing.offset() + size) {
                return Optional.of(new BlankProof(BlankProof.Kind.HOLES, "it is a loop device whose image file "
                        + file.get() + " is all holes where the device reads it (SEEK_DATA finds no data)"));
            }
            LOG.info("{} reads {}, which holds data at offset {}: no holes proof", device.describe(), file.get(), data);
        } catch (IOException e) {
            LOG.info("{}: no holes proof from {}: {}", device.describe(), file.get(), e.getMessage());
        }
        return Optional.empty();
    }

    /**
     * Reads the whole device and proves it all zeros, or refuses. Call it without holding the
     * volume lock: it can take as long as {@code kiln.volumes.zero-read-timeout}.
     *
     * @param device      the device
     * @param looksBlank  why it looks blank (the decider's reason), for messages
     * @throws VolumeRefusedException when the read is turned off, finds data, fails, or runs out of time
     */
    ZeroRead readAll(BlockDevice device, String looksBlank) {
        String refusing = "refusing to format " + device.describe() + ": it looks blank (" + looksBlank + ")";
        if (zeroReadTimeout.isZero() || zeroReadTimeout.isNegative()) {
            throw new VolumeRefusedException(refusing + ", but nothing proves it: it is not a volume the controller"
                    + " created empty for this launch, nor a loop device whose image file is all holes, and reading it in"
                    + " full is turned off (kiln.volumes.zero-read-timeout: 0s); " + HOW + "; " + NOTHING);
        }
        long size;
        try {
            size = tools.size(device.path());
        } catch (IOException e) {
            throw new VolumeRefusedException(refusing + ", but its size cannot be read to read it in full ("
                    + e.getMessage() + "); " + NOTHING);
        }
        Instant start = clock.instant();
        Instant deadline = start.plus(zeroReadTimeout);
        LOG.info("{} looks blank, but neither created-empty nor an image file's holes prove it: reading all {} of it"
                + " for zeros (for at most {}, kiln.volumes.zero-read-timeout)", device.describe(), bytes(size),
                SysfsVolumes.text(zeroReadTimeout));
        long done = 0;
        int tenths = 0;
        Instant logged = start;
        Instant now = start;
        while (done < size) {
            if (now.isAfter(deadline)) {
                throw new VolumeRefusedException(refusing + ", but nothing proves it: it is not a volume the controller"
                        + " created empty for this launch, nor a loop device whose image file is all holes, and reading"
                        + " all " + bytes(size) + " of it for zeros did not finish within "
                        + SysfsVolumes.text(zeroReadTimeout) + " (kiln.volumes.zero-read-timeout; "
                        + (done == 0 ? "none of it was read" : "the first " + bytes(done) + " are zeros") + "); " + HOW
                        + "; " + NOTHING);
            }
            int n = (int) Math.min(SLICE, size - done);
            long at;
            try {
                at = tools.firstNonZero(device.path(), done, n);
            } catch (IOException e) {
                throw new VolumeRefusedException(refusing + ", but reading it in full to prove it all zeros failed"
                        + " between bytes " + done + " and " + (done + n) + " (" + e.getMessage() + "); " + NOTHING);
            }
            if (at >= 0) {
                LOG.warn("{}: byte {} is not zero: it holds data that blkid and wipefs do not recognise",
                        device.describe(), at);
                throw new VolumeRefusedException(refusing + ", but byte " + at + " (" + bytes(at) + " in) is not zero:"
                        + " it holds data that blkid and wipefs do not recognise, such as partitions, LVM or RAID members"
                        + " whose table or signatures were wiped; look at it (e.g. blkid -p -O OFFSET, testdisk), and if"
                        + " its contents are disposable, use a new empty volume or zero it whole (blkdiscard -z); "
                        + NOTHING);
            }
            done += n;
            now = clock.instant();
            int t = (int) (done * 10 / size);
            if (done < size && (t > tenths || !now.isBefore(logged.plus(PROGRESS_EVERY)))) {
                tenths = t;
                logged = now;
                LOG.info("{}: read {} of {} ({}%), all zeros so far{}", device.describe(), bytes(done), bytes(size),
                        done * 100 / size, rate(done, size, Duration.between(start, now)));
            }
        }
        Duration took = Duration.between(start, clock.instant());
        LOG.info("{}: read all {} in {}: all zeros", device.describe(), bytes(size), took.toSeconds() + "s");
        return new ZeroRead(device, new BlankProof(BlankProof.Kind.ZEROS, "it was read in full (" + bytes(size)
                + ") and is all zeros"));
    }

    /** ", 180 MiB/s, about 12m left" once there is a rate to tell. */
    private static String rate(long done, long size, Duration elapsed) {
        long ms = elapsed.toMillis();
        if (ms < 1000) {
            return "";
        }
        double perSecond = done * 1000.0 / ms;
        long left = (long) ((size - done) / perSecond);
        return String.format(Locale.ROOT, ", %.0f MiB/s, about %s left", perSecond / (1 << 20),
                left >= 120 ? (left / 60) + "m" : left + "s");
    }

    /** "64 MiB", "500 GiB", "1.5 GiB". */
    static String bytes(long n) {
        if (n >= 1L << 30) {
            double g = n / (double) (1L << 30);
            return g == Math.rint(g) ? (long) g + " GiB" : String.format(Locale.ROOT, "%.1f GiB", g);
        }
        if (n >= 1L << 20) {
            return (n >> 20) + " MiB";
        }
        return n + " bytes";
    }
}
