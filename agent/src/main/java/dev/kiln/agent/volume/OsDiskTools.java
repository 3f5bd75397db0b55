package dev.kiln.agent.volume;

import com.sun.nio.file.ExtendedOpenOption;
import dev.kiln.os.OsCommand;
import dev.kiln.os.OsCommand.Result;

import java.io.File;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.List;
import java.util.Map;

/**
 * {@link DiskTools} with util-linux, e2fsprogs and xfsprogs. Every tool is found in and runs with
 * a fixed PATH that holds the sbin folders (the agent's own PATH may lack them: a non-root user's
 * on Debian does) and {@code LC_ALL=C} (its output is parsed), no stdin (nothing can answer a
 * prompt), and a time limit. Nothing is ever forced: no {@code mkfs -F/-f}, no {@code umount -l/-f}.
 */
public final class OsDiskTools implements DiskTools {

    private static final Map<String, String> ENVIRONMENT = Map.of(
            "PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL", "C");
    private static final Duration QUICK = Duration.ofMinutes(1);
    /** Formatting, checking, growing and syncing scale with the volume; they get hours, not minutes. */
    private static final Duration SLOW = Duration.ofHours(6);

    @Override
    public long size(Path device) throws IOException {
        Result r = run(QUICK, "blockdev", "--getsize64", device.toString());
        if (!r.ok()) {
            throw new IOException("cannot read the size of " + device + ": " + r.describe());
        }
        try {
            return Long.parseLong(r.stdout().strip());
        } catch (NumberFormatException e) {
            throw new IOException("blockdev printed '" + r.stdout().strip() + "' for the size of " + device);
        }
    }

    @Override
    public Result blkid(Path device) throws IOException {
        return run(QUICK, "blkid", "-p", "-o", "export", device.toString());
    }

    @Override
    public Result wipefsList(Path device) throws IOException {
        return run(QUICK, "wipefs", "--no-act", "--parsable", "--noheadings", "--output", "OFFSET,TYPE,USAGE",
                device.toString());
    }

    @Override
    public byte[] read(Path device, long offset, int length) throws IOException {
        ByteBuffer buffer = ByteBuffer.allocate(length);
        try (FileChannel channel = FileChannel.open(device, StandardOpenOption.READ)) {
            while (buffer.hasRemaining()) {
                int n = channel.read(buffer, offset + buffer.position());
                if (n < 0) {
                    throw new IOException("short read: the device ended after " + (offset + buffer.position()) + " bytes");
                }
            }
        }
        return buffer.array();
    }

    /** How much {@link #firstNonZero} reads at a time. */
    private static final int CHUNK = 4 << 20;
    /**
     * Zeros that a chunk is compared with, a window at a time: 64 KiB held for as long as the agent
     * runs, not a chunk's 4 MiB (the class is loaded at start-up, so that would be resident idle).
     */
    private static final ByteBuffer ZEROS = ByteBuffer.allocateDirect(64 << 10).asReadOnlyBuffer();

    @Override
    public long firstNonZero(Path device, long offset, int length) throws IOException {
        FileChannel channel = null;
        int alignment = 1;
        try {
            int block = (int) Files.getFileStore(device).getBlockSize();
            if (block > 0 && block <= CHUNK && offset % block == 0 && length % block == 0) {
                channel = FileChannel.open(device, StandardOpenOption.READ, ExtendedOpenOption.DIRECT);
                alignment = block;
            }
        } catch (IOException | UnsupportedOperationException e) {
            // No O_DIRECT here (or an unaligned range): read through the page cache instead.
        }
        if (channel == null) {
            channel = FileChannel.open(device, StandardOpenOption.READ);
        }
        try (FileChannel ch = channel) {
            ByteBuffer buffer = ByteBuffer.allocateDirect(CHUNK + alignment).alignedSlice(alignment);
            long done = 0;
            while (done < length) {
                int n = (int) Math.min(CHUNK, length - done);
                buffer.clear().limit(n);
                while (buffer.hasRemaining()) {
                    if (ch.read(buffer, offset + done + buffer.position()) < 0) {
                        throw new IOException("short read: the device ended after " + (offset + done + buffer.position())
                                + " bytes");
                    }
                }
                for (int from = 0; from < n; from += ZEROS.capacity()) {
                    int window = Math.min(ZEROS.capacity(), n - from);
                    int at = buffer.slice(from, window).mismatch(ZEROS.duplicate().limit(window));
                    if (at >= 0) {
                        return offset + done + from + at;
                    }
                }
                done += n;
            }
            return -1;
        }
    }

    @Override
    public LoopBacking loopBacking(Path device) throws IOException {
        return LinuxIo.loopBacking(device);
    }

    @Override
    public long firstData(Path file, LoopBacking backing, long from) throws IOException {
        return LinuxIo.firstData(file, backing, from);
    }

    @Override
    public void flush(Path device) throws IOException {
        try (FileChannel channel = FileChannel.open(device, StandardOpenOption.READ)) {
            channel.force(true);
        }
    }

    @Override
    public String blockDeviceNumber(Path path) throws IOException {
        int mode = (Integer) Files.getAttribute(path, "unix:mode");
        if ((mode & 0170000) != 0060000) {
            throw new IOException(path + " is not a block device");
        }
        long rdev = (Long) Files.getAttribute(path, "unix:rdev");
        return DeviceNumbers.major(rdev) + ":" + DeviceNumbers.minor(rdev);
    }

    @Override
    public Result mkfs(Filesystem fs, Path device, String label, int uid, int gid) throws IOException {
        return switch (fs) {
            // -m 0: a data volume needs no blocks reserved for root. root_owner: the build user
            // owns the new filesystem's root directory from the first moment.
            case EXT4 -> run(SLOW, "mkfs.ext4", "-q", "-m", "0", "-L", label, "-E", "root_owner=" + uid + ":" + gid,
                    device.toString());
            case XFS -> run(SLOW, "mkfs.xfs", "-q", "-L", label, device.toString());
        };
    }

    @Override
    public Result fsck(Path device, boolean force) throws IOException {
        return force ? run(SLOW, "fsck.ext4", "-a", "-f", device.toString()) : run(SLOW, "fsck.ext4", "-a", device.toString());
    }

    @Override
    public long ext4Size(Path device) throws IOException {
        Result r = run(QUICK, "dumpe2fs", "-h", device.toString());
        if (!r.ok()) {
            throw new IOException("cannot read the ext4 superblock of " + device + ": " + r.describe());
        }
        long blocks = -1;
        long blockSize = -1;
        for (String line : r.stdout().split("\n")) {
            if (line.startsWith("Block count:")) {
                blocks = Long.parseLong(line.substring("Block count:".length()).strip());
            } else if (line.startsWith("Block size:")) {
                blockSize = Long.parseLong(line.substring("Block size:".length()).strip());
            }
        }
        if (blocks < 0 || blockSize < 0) {
            throw new IOException("dumpe2fs -h " + device + " printed no block count and size");
        }
        return blocks * blockSize;
    }

    @Override
    public Result mount(String source, Path target, String type, String options) throws IOException {
        return run(Duration.ofMinutes(10), "mount", "-t", type, "-o", options, source, target.toString());
    }

    @Override
    public Result umount(Path target) throws IOException {
        return run(SLOW, "umount", target.toString());
    }

    @Override
    public Result syncFilesystem(Path mountPoint) throws IOException {
        return run(SLOW, "sync", "-f", mountPoint.toString());
    }

    @Override
    public Result freeze(Path mountPoint) throws IOException {
        return run(SLOW, "fsfreeze", "--freeze", mountPoint.toString());
    }

    @Override
    public Result thaw(Path mountPoint) throws IOException {
        return run(QUICK, "fsfreeze", "--unfreeze", mountPoint.toString());
    }

    @Override
    public Result grow(Filesystem fs, Path device, Path mountPoint) throws IOException {
        return switch (fs) {
            case EXT4 -> run(SLOW, "resize2fs", device.toString());
            case XFS -> run(SLOW, "xfs_growfs", mountPoint.toString());
        };
    }

    @Override
    public long filesystemSize(Path mountPoint) throws IOException {
        return Files.getFileStore(mountPoint).getTotalSpace();
    }

    @Override
    public void chown(Path path, int uid, int gid) throws IOException {
        Files.setAttribute(path, "unix:uid", uid, LinkOption.NOFOLLOW_LINKS);
        Files.setAttribute(path, "unix:gid", gid, LinkOption.NOFOLLOW_LINKS);
    }

    /** Runs a tool to completion (or until {@code limit}, when it is killed and reported as exit 124). */
    static Result run(Duration limit, String... argv) throws IOException {
        return OsCommand.run(limit, ENVIRONMENT, List.of(argv));
    }
}
