package dev.kiln.agent.volume;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Optional;
import java.util.stream.Stream;

/**
 * Identifies block devices the way Nitro instances expose EBS volumes: an NVMe controller whose
 * {@code model} is "Amazon Elastic Block Store" and whose {@code serial} is the volume id without
 * its dash ({@code <sysfs>/block/nvme1n1/device/{model,serial}}). Device names such as
 * {@code /dev/sdf} and {@code /dev/disk/by-id} links are hints only: when a request names a volume
 * id, a link that leads to a different volume is refused, naming both ids.
 *
 * <p>The sysfs and /dev roots are settings, so this logic is tested against a fake sysfs tree.
 */
public final class SysfsVolumes {

    /** The NVMe model string of EBS volumes. */
    public static final String EBS_MODEL = "Amazon Elastic Block Store";

    /** How {@link #find} waits between looks; tests use a fake clock and sleeper. */
    public interface Sleeper {
        void sleep(Duration d) throws InterruptedException;
    }

    private final Path sysfsRoot;
    private final Path devRoot;
    private final Clock clock;
    private final Sleeper sleeper;
    private final Duration poll;

    /**
     * @param sysfsRoot where sysfs is mounted ({@code /sys})
     * @param devRoot   where device nodes live ({@code /dev})
     * @param clock     time source for waits
     * @param sleeper   how to wait
     * @param poll      how often to look again while waiting
     */
    public SysfsVolumes(Path sysfsRoot, Path devRoot, Clock clock, Sleeper sleeper, Duration poll) {
        this.sysfsRoot = sysfsRoot;
        this.devRoot = devRoot;
        this.clock = clock;
        this.sleeper = sleeper;
        this.poll = poll;
    }

    /** With the real clock, polling twice a second. */
    public SysfsVolumes(Path sysfsRoot, Path devRoot) {
        this(sysfsRoot, devRoot, Clock.systemUTC(), d -> Thread.sleep(d.toMillis()), Duration.ofMillis(500));
    }

    public Path devRoot() {
        return devRoot;
    }

    /** Every whole-disk block device with a non-zero size, by name. */
    public List<BlockDevice> list() {
        Path block = sysfsRoot.resolve("block");
        List<BlockDevice> all = new ArrayList<>();
        try (Stream<Path> entries = Files.list(block)) {
            for (Path e : entries.sorted(Comparator.comparing(Path::toString)).toList()) {
                byName(e.getFileName().toString()).filter(d -> d.sizeBytes() > 0).ifPresent(all::add);
            }
        } catch (IOException e) {
            // no sysfs (or an empty fake tree): no devices
        }
        return all;
    }

    /** The whole disk with this kernel name, if sysfs lists it. */
    public Optional<BlockDevice> byName(String name) {
        if (name.isEmpty() || name.contains("/") || name.startsWith(".")) {
            return Optional.empty();
        }
        Path dir = sysfsRoot.resolve("block").resolve(name);
        Optional<String> number = readLine(dir.resolve("dev"));
        if (number.isEmpty()) {
            return Optional.empty();
        }
        long sectors = readLine(dir.resolve("size")).map(s -> {
            try {
                return Long.parseLong(s);
            } catch (NumberFormatException e) {
                return 0L;
            }
        }).orElse(0L);
        return Optional.of(new BlockDevice(name, devRoot.resolve(name), number.get(), sectors * 512,
                volumeId(dir.resolve("device"))));
    }

    /** The whole disk with this device number ("major:minor"), if any. */
    public Optional<BlockDevice> byNumber(String number) {
        return list().stream().filter(d -> d.number().equals(number)).findFirst();
    }

    /**
     * The file a loop device reads from, as sysfs names it ({@code block/loopN/loop/backing_file}),
     * if the device is a loop device whose file still has a name. A path only: the kernel's own
     * record of the file (its device and inode) is what proves it is the same file.
     */
    public Optional<Path> loopBackingFile(BlockDevice device) {
        if (device.name().isEmpty() || device.name().contains("/") || device.name().startsWith(".")) {
            return Optional.empty();
        }
        Optional<String> text = readLine(sysfsRoot.resolve("block").resolve(device.name()).resolve("loop")
                .resolve("backing_file"));
        // An unlinked file shows as "PATH (deleted)": no path leads to it any more.
        if (text.isEmpty() || text.get().endsWith(" (deleted)") || !text.get().startsWith("/")) {
            return Optional.empty();
        }
        try {
            return Optional.of(Path.of(text.get()));
        } catch (RuntimeException e) {
            return Optional.empty();
        }
    }

    /**
     * The EBS volume id of an NVMe controller directory: empty unless its model is exactly
     * {@link #EBS_MODEL} and its serial is "vol" followed by hex digits.
     */
    static String volumeId(Path controller) {
        Optional<String> model = readLine(controller.resolve("model"));
        Optional<String> serial = readLine(controller.resolve("serial"));
        if (model.isEmpty() || serial.isEmpty() || !model.get().equals(EBS_MODEL)) {
            return "";
        }
        String s = serial.get();
        if (!s.matches("vol([0-9a-f]{8}|[0-9a-f]{17})")) {
            return "";
        }
        return "vol-" + s.substring(3);
    }

    /**
     * Finds the volume a request means, waiting up to {@code wait} for it to appear (EBS
     * attachment takes a while).
     *
     * @throws VolumeNotFoundException when it did not appear in time
     * @throws VolumeRefusedException  when a device hint leads to a different volume
     */
    public BlockDevice find(VolumeRef ref, Duration wait) {
        ref.validate();
        Instant giveUp = clock.instant().plus(wait);
        while (true) {
            Optional<BlockDevice> found = lookUp(ref);
            if (found.isPresent()) {
                return found.get();
            }
            Duration left = Duration.between(clock.instant(), giveUp);
            if (left.isNegative() || left.isZero()) {
                throw new VolumeNotFoundException(ref.volumeId().isEmpty()
                        ? "device " + ref.deviceHint() + " did not appear within " + text(wait)
                        : "volume " + ref.volumeId() + " is not attached: no NVMe device with model '" + EBS_MODEL
                        + "' and serial '" + ref.volumeId().replace("-", "") + "' appeared within " + text(wait));
            }
            try {
                sleeper.sleep(left.compareTo(poll) < 0 ? left : poll);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new VolumeNotFoundException("interrupted while waiting for " + ref.describe());
            }
        }
    }

    /**
     * Reads the device's identity again (right before mkfs, mount or freeze) and refuses if it is
     * not the same device and volume any more.
     *
     * @return the device as it is now
     * @throws VolumeRefusedException naming what changed; nothing was written
     */
    public BlockDevice verify(BlockDevice expected, VolumeRef ref) {
        Optional<BlockDevice> now = byName(expected.name());
        if (now.isEmpty()) {
            throw new VolumeRefusedException(expected.describe() + " disappeared before it could be used; nothing was written");
        }
        BlockDevice d = now.get();
        if (!d.number().equals(expected.number()) || !d.volumeId().equals(expected.volumeId())) {
            throw new VolumeRefusedException("the identity of " + expected.path() + " changed: it was "
                    + who(expected) + ", now it is " + who(d) + "; nothing was written");
        }
        if (!ref.deviceHint().isEmpty()) {
            Optional<String> hinted = hintedName(ref.deviceHint());
            if (hinted.isPresent() && !hinted.get().equals(expected.name())) {
                // The hint moved to another device in the meantime: the request is no longer unambiguous.
                Optional<BlockDevice> other = byName(hinted.get());
                throw new VolumeRefusedException("device " + ref.deviceHint() + " now points at " + hinted.get()
                        + other.map(o -> " (" + who(o) + ")").orElse("") + ", not at " + expected.name()
                        + " (" + who(expected) + "); nothing was written");
            }
        }
        if (!ref.volumeId().isEmpty() && !ref.volumeId().equals(d.volumeId())) {
            throw new VolumeRefusedException(d.path() + " is " + who(d) + ", not the requested " + ref.volumeId()
                    + "; nothing was written");
        }
        return d;
    }

    private Optional<BlockDevice> lookUp(VolumeRef ref) {
        Optional<BlockDevice> hinted = Optional.empty();
        if (!ref.deviceHint().isEmpty()) {
            Optional<String> name = hintedName(ref.deviceHint());
            if (name.isPresent()) {
                hinted = byName(name.get());
                if (hinted.isEmpty()) {
                    throw new VolumeRefusedException("device " + ref.deviceHint() + " is " + name.get() + ", which "
                            + sysfsRoot.resolve("block") + " does not list as a whole disk (a partition, or not a block"
                            + " device); Kiln uses whole volumes; nothing was written");
                }
            }
        }
        if (ref.volumeId().isEmpty()) {
            return hinted;
        }
        if (hinted.isPresent() && !hinted.get().volumeId().equals(ref.volumeId())) {
            BlockDevice other = hinted.get();
            String what = other.volumeId().isEmpty()
                    ? "which does not identify itself as an EBS volume (no NVMe model '" + EBS_MODEL + "' and serial)"
                    : "which is volume " + other.volumeId();
            throw new VolumeRefusedException("device " + ref.deviceHint() + " points at " + other.name() + ", " + what
                    + ", not the requested " + ref.volumeId() + "; the link is stale or the hint is wrong;"
                    + " nothing was written");
        }
        List<BlockDevice> matches = list().stream().filter(d -> d.volumeId().equals(ref.volumeId())).toList();
        if (matches.size() > 1) {
            throw new VolumeRefusedException("volume " + ref.volumeId() + " appears more than once ("
                    + String.join(", ", matches.stream().map(d -> d.path().toString()).toList())
                    + "); refusing to guess; nothing was written");
        }
        return matches.stream().findFirst();
    }

    /** The kernel name a /dev path leads to (following links), if it exists now. */
    private Optional<String> hintedName(String hint) {
        Path p = devRoot.resolve(hint.substring("/dev/".length()));
        if (!Files.exists(p)) {
            return Optional.empty(); // not there (yet), or a dangling link
        }
        try {
            return Optional.of(p.toRealPath().getFileName().toString());
        } catch (IOException e) {
            return Optional.empty();
        }
    }

    private static String who(BlockDevice d) {
        return (d.volumeId().isEmpty() ? "not an EBS volume" : "volume " + d.volumeId()) + ", device " + d.number();
    }

    static String text(Duration d) {
        long s = d.toSeconds();
        if (d.toMillis() % 1000 != 0 || s == 0) {
            return d.toMillis() + "ms";
        }
        if (s % 3600 == 0) {
            return (s / 3600) + "h";
        }
        if (s % 60 == 0) {
            return (s / 60) + "m";
        }
        return s + "s";
    }

    private static Optional<String> readLine(Path file) {
        try {
            String text = Files.readString(file, StandardCharsets.UTF_8).strip();
            return text.isEmpty() ? Optional.empty() : Optional.of(text);
        } catch (IOException | RuntimeException e) {
            return Optional.empty();
        }
    }
}
