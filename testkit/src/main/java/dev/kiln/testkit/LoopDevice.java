package dev.kiln.testkit;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A loop device over a sparse file: the stand-in for an EBS volume. Needs root and
 * {@code losetup}; skips the test without them (fails it under {@code CI=true}).
 *
 * <pre>{@code
 * try (LoopDevice volume = LoopDevice.create(tempDir, 64L << 20)) {
 *     format(volume.device());
 * }
 * }</pre>
 *
 * <p>In a container whose /dev is not a devtmpfs, the kernel creates loop devices that have no
 * node under /dev; {@link #create} then makes the node itself ({@code mknod /dev/loopN b 7 N})
 * and removes it again on close.
 */
public final class LoopDevice implements AutoCloseable {

    private static final Logger LOG = LoggerFactory.getLogger(LoopDevice.class);
    private static final String INSTALL_HINT = "apt-get install util-linux";
    private static final Path LOOP_CONTROL = Path.of("/dev/loop-control");
    private static final Pattern LOOP_NAME = Pattern.compile("/dev/loop(\\d+)");
    private static final int ATTEMPTS = 3;

    private final Path losetup;
    private final Path device;
    private final Path backingFile;
    private final boolean createdNode;
    private boolean closed;
    private boolean keepBackingFile;

    private LoopDevice(Path losetup, Path device, Path backingFile, boolean createdNode) {
        this.losetup = losetup;
        this.device = device;
        this.backingFile = backingFile;
        this.createdNode = createdNode;
    }

    /**
     * Creates a sparse file of {@code sizeBytes} in {@code dir} and attaches it to a free loop device.
     *
     * @param dir where the backing file goes (a test's {@code @TempDir})
     * @param sizeBytes the device's size; a multiple of 512
     * @return the attached device; close it to detach it and delete the file
     */
    public static LoopDevice create(Path dir, long sizeBytes) {
        if (sizeBytes <= 0 || sizeBytes % 512 != 0) {
            throw new IllegalArgumentException("size must be a positive multiple of 512: " + sizeBytes);
        }
        Prerequisites.requireRoot("attaching loop devices");
        Path losetup = Prerequisites.requireCommand("losetup", INSTALL_HINT);
        Prerequisites.require("loop device support (" + LOOP_CONTROL + ")", Files.exists(LOOP_CONTROL),
                "load the loop module (modprobe loop) on the host, and give a container access to"
                        + " /dev/loop-control and /dev/loop* (e.g. docker run --privileged)");

        Path backingFile = createSparseFile(dir, sizeBytes);
        try {
            return attach(losetup, backingFile);
        } catch (RuntimeException e) {
            deleteQuietly(backingFile);
            throw e;
        }
    }

    /**
     * Attaches an existing file (which the caller owns and deletes) to a free loop device.
     *
     * @param backingFile the file; its size is the device's size
     * @return the attached device; close it to detach it (the file is left alone)
     */
    public static LoopDevice attach(Path backingFile) {
        Prerequisites.requireRoot("attaching loop devices");
        Path losetup = Prerequisites.requireCommand("losetup", INSTALL_HINT);
        LoopDevice d = attach(losetup, backingFile);
        d.keepBackingFile = true;
        return d;
    }

    /**
     * Tells the kernel the backing file's size changed ({@code losetup --set-capacity}), as an
     * enlarged EBS volume would appear.
     */
    public void refreshCapacity() {
        Commands.run(losetup.toString(), "--set-capacity", device.toString()).orThrow();
    }

    /** The loop device, e.g. {@code /dev/loop3}. */
    public Path device() {
        return device;
    }

    /** The sparse file behind the device. */
    public Path backingFile() {
        return backingFile;
    }

    /**
     * Detaches the device ({@code losetup -d}) and deletes the backing file. Fails if the device
     * is still in use (e.g. mounted) rather than leaving it attached silently.
     */
    @Override
    public synchronized void close() {
        if (closed) {
            return;
        }
        Commands.run(losetup.toString(), "-d", device.toString()).orThrow();
        closed = true;
        if (createdNode) {
            deleteQuietly(device);
        }
        if (!keepBackingFile) {
            deleteQuietly(backingFile);
        }
    }

    private static LoopDevice attach(Path losetup, Path backingFile) {
        Commands.Result last = null;
        for (int attempt = 1; attempt <= ATTEMPTS; attempt++) {
            last = Commands.run(losetup.toString(), "--find", "--show", backingFile.toString());
            if (last.succeeded()) {
                return new LoopDevice(losetup, Path.of(last.stdout().strip()), backingFile, false);
            }
            // The kernel has a free loop device but /dev lacks its node (no devtmpfs in this
            // container): create the node and attach to that device explicitly.
            Optional<Path> created = createMissingNode(losetup);
            if (created.isPresent()) {
                Commands.Result explicit = Commands.run(losetup.toString(), created.get().toString(),
                        backingFile.toString());
                if (explicit.succeeded()) {
                    return new LoopDevice(losetup, created.get(), backingFile, true);
                }
                last = explicit;
                deleteQuietly(created.get());
            }
        }
        throw new IllegalStateException("could not attach " + backingFile + " to a loop device: "
                + last.describe() + ". Loop devices need root, /dev/loop-control and free /dev/loopN"
                + " nodes (in a container: --privileged, or --device /dev/loop-control plus loop nodes)");
    }

    /** Makes the node for the next free loop device if /dev lacks it; empty if there is nothing to make. */
    private static Optional<Path> createMissingNode(Path losetup) {
        Commands.Result free = Commands.run(losetup.toString(), "--find");
        Matcher name = LOOP_NAME.matcher(free.stdout().strip());
        if (!free.succeeded() || !name.matches()) {
            return Optional.empty();
        }
        Path node = Path.of(name.group());
        if (Files.exists(node)) {
            return Optional.empty();
        }
        String minor = name.group(1);
        String major = "7";
        // Prefer the numbers the kernel reports; "7:N" is the loop driver's usual pair.
        Path sysDev = Path.of("/sys/class/block/loop" + minor + "/dev");
        try {
            if (Files.exists(sysDev)) {
                String[] numbers = Files.readString(sysDev).strip().split(":");
                major = numbers[0];
                minor = numbers[1];
            }
        } catch (IOException | ArrayIndexOutOfBoundsException e) {
            LOG.debug("could not read {}; using 7:{}", sysDev, minor, e);
        }
        Commands.Result mknod = Commands.run("mknod", "-m", "0660", node.toString(), "b", major, minor);
        if (!mknod.succeeded()) {
            LOG.warn("could not create missing loop node: {}", mknod.describe());
            return Optional.empty();
        }
        LOG.info("created missing loop device node {} (b {} {})", node, major, minor);
        return Optional.of(node);
    }

    private static Path createSparseFile(Path dir, long sizeBytes) {
        try {
            Path file = Files.createTempFile(dir, "loop-", ".img");
            try (RandomAccessFile raf = new RandomAccessFile(file.toFile(), "rw")) {
                raf.setLength(sizeBytes);
            }
            return file;
        } catch (IOException e) {
            throw new UncheckedIOException("could not create a backing file in " + dir, e);
        }
    }

    private static void deleteQuietly(Path path) {
        try {
            Files.deleteIfExists(path);
        } catch (IOException e) {
            LOG.warn("could not delete {}", path, e);
        }
    }
}
