package dev.kiln.testkit;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * A block device whose every read fails with EIO: the stand-in for a failing EBS volume. It is a
 * loop device over a file on a small ext4 filesystem (itself on a loop device) that has been shut
 * down ({@code xfs_io -x -c shutdown}, the FS_IOC_SHUTDOWN ioctl ext4 supports), so reads of the
 * file, and so of the device, return an I/O error. It works wherever loop devices do, including
 * kernels without device-mapper (where a dm {@code error} target is not available). Needs root,
 * {@code losetup}, {@code mkfs.ext4}, {@code mount} and {@code xfs_io}.
 *
 * <p>Notably, {@code blkid -p} and {@code wipefs} report "nothing found" on such a device: only a
 * read shows that it is unreadable.
 */
public final class UnreadableDevice implements AutoCloseable {

    private final LoopDevice host;
    private final Path hostMount;
    private final LoopDevice device;
    private boolean closed;

    private UnreadableDevice(LoopDevice host, Path hostMount, LoopDevice device) {
        this.host = host;
        this.hostMount = hostMount;
        this.device = device;
    }

    /**
     * Creates it in {@code dir} (a test's temporary directory).
     *
     * @param sizeBytes the unreadable device's size (the host filesystem is a little larger)
     */
    public static UnreadableDevice create(Path dir, long sizeBytes) {
        Prerequisites.requireRoot("creating an unreadable device");
        Path mkfs = Prerequisites.requireCommand("mkfs.ext4", "apt-get install e2fsprogs");
        Path xfsIo = Prerequisites.requireCommand("xfs_io", "apt-get install xfsprogs");
        LoopDevice host = LoopDevice.create(dir, sizeBytes + (32L << 20));
        Path hostMount = dir.resolve("unreadable-host-" + host.device().getFileName());
        LoopDevice device = null;
        boolean mounted = false;
        try {
            Commands.run(mkfs.toString(), "-q", host.device().toString()).orThrow();
            Files.createDirectories(hostMount);
            Commands.run("mount", host.device().toString(), hostMount.toString()).orThrow();
            mounted = true;
            Path image = hostMount.resolve("volume.img");
            try (RandomAccessFile raf = new RandomAccessFile(image.toFile(), "rw")) {
                raf.setLength(sizeBytes);
            }
            device = LoopDevice.attach(image);
            // From now on every read of volume.img, and so of the loop device, fails with EIO.
            Commands.run(xfsIo.toString(), "-x", "-c", "shutdown", hostMount.toString()).orThrow();
            return new UnreadableDevice(host, hostMount, device);
        } catch (IOException | RuntimeException e) {
            if (device != null) {
                device.close();
            }
            if (mounted) {
                Commands.run("umount", hostMount.toString());
            }
            host.close();
            if (e instanceof IOException io) {
                throw new UncheckedIOException(io);
            }
            throw (RuntimeException) e;
        }
    }

    /** The unreadable device, e.g. {@code /dev/loop7}. */
    public Path device() {
        return device.device();
    }

    /** Detaches the device, unmounts the shut-down host filesystem and detaches its loop device. */
    @Override
    public synchronized void close() {
        if (closed) {
            return;
        }
        device.close();
        Commands.run("umount", hostMount.toString()).orThrow();
        host.close();
        closed = true;
    }
}
