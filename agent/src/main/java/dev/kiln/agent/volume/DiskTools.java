package dev.kiln.agent.volume;

import dev.kiln.os.OsCommand.Result;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;

/**
 * Everything the volume feature does to disks and filesystems: the agent's one boundary with
 * {@code blkid}, {@code wipefs}, {@code mkfs.*}, {@code fsck}, {@code mount}, {@code umount},
 * {@code fsfreeze} and the growing tools, the raw reads of a device, and the holes of a loop
 * device's image file. {@link OsDiskTools} is the
 * real implementation. Methods report what the tool said ({@link Result}); the domain classes
 * decide what it means, so every decision lives in one place and is tested against real tools.
 */
public interface DiskTools {

    /** The device's size in bytes ({@code blockdev --getsize64}). */
    long size(Path device) throws IOException;

    /** Low-level probe of signatures, bypassing the cache ({@code blkid -p -o export}); exit 2 = nothing found. */
    Result blkid(Path device) throws IOException;

    /** Lists signatures without erasing anything ({@code wipefs --no-act}), one "OFFSET,TYPE,USAGE" line each. */
    Result wipefsList(Path device) throws IOException;

    /**
     * Reads {@code length} bytes at {@code offset} from the device.
     *
     * @throws IOException on a read error or a short read
     */
    byte[] read(Path device, long offset, int length) throws IOException;

    /**
     * Reads {@code [offset, offset + length)} of the device and finds its first non-zero byte.
     * Where the device allows it the read bypasses the page cache ({@code O_DIRECT}): the bytes
     * are the device's own, and a read of a whole volume does not evict everything else.
     *
     * @return the absolute offset of the first non-zero byte, or -1 when the range is all zeros
     * @throws IOException on a read error or a short read
     */
    long firstNonZero(Path device, long offset, int length) throws IOException;

    /**
     * What a loop device reads from, as the kernel reports it ({@code ioctl LOOP_GET_STATUS64}).
     *
     * @param fileDevice the device holding the backing file, as the kernel encodes it ({@code lo_device})
     * @param inode      the backing file's inode number
     * @param offset     where in the file the device begins
     * @param sizeLimit  how many bytes of the file the device shows; 0 means up to the file's end
     */
    record LoopBacking(long fileDevice, long inode, long offset, long sizeLimit) {
    }

    /**
     * The backing file of a loop device, as the kernel knows it (not a path: a device and inode).
     *
     * @throws IOException when it is not a loop device, or has no backing file
     */
    LoopBacking loopBacking(Path device) throws IOException;

    /**
     * Where the first data (anything but a hole) at or after {@code from} lies in {@code file}
     * ({@code lseek(SEEK_DATA)}). A filesystem that does not track holes reports all of a file as
     * data, so the answer errs towards data.
     *
     * @param backing the loop device's backing file, checked on the open file (device and inode)
     * @return the offset, or -1 when there is no data at or after {@code from}
     * @throws IOException when the file cannot be searched or is not {@code backing}'s file
     */
    long firstData(Path file, LoopBacking backing, long from) throws IOException;

    /**
     * Writes a block device's cached writes down to what lies below it ({@code fsync} of the
     * device), so a loop device's backing file holds everything that was written to the device.
     */
    void flush(Path device) throws IOException;

    /**
     * The device number ("major:minor") of the block device node at {@code path} (following links).
     *
     * @throws IOException when the path is not a block device node
     */
    String blockDeviceNumber(Path path) throws IOException;

    /**
     * Makes a filesystem. Never forces: a tool that finds something on the device may refuse.
     *
     * @param fs    the filesystem
     * @param device the blank device
     * @param label its label
     * @param uid   owner of the new filesystem's root directory
     * @param gid   group of the new filesystem's root directory
     */
    Result mkfs(Filesystem fs, Path device, String label, int uid, int gid) throws IOException;

    /**
     * Checks and automatically repairs an unmounted ext4 filesystem ({@code fsck.ext4 -a}; with
     * {@code force}, also {@code -f}: a full check even when it looks clean, as resize2fs requires).
     */
    Result fsck(Path device, boolean force) throws IOException;

    /** The size in bytes of the ext4 filesystem on an unmounted device (block count times block size, from dumpe2fs -h). */
    long ext4Size(Path device) throws IOException;

    /** {@code mount -t TYPE -o OPTIONS SOURCE TARGET}. */
    Result mount(String source, Path target, String type, String options) throws IOException;

    /** {@code umount TARGET}: never lazy, never forced. */
    Result umount(Path target) throws IOException;

    /** Flushes one filesystem ({@code sync -f}), leaving other (possibly frozen) ones alone. */
    Result syncFilesystem(Path mountPoint) throws IOException;

    /** {@code fsfreeze --freeze}. */
    Result freeze(Path mountPoint) throws IOException;

    /** {@code fsfreeze --unfreeze}. Exit 1 with "Invalid argument" when it was not frozen. */
    Result thaw(Path mountPoint) throws IOException;

    /**
     * Grows a filesystem to fill its device: ext4 offline ({@code resize2fs DEVICE} before it is
     * mounted, which needs no CAP_SYS_RESOURCE), xfs online ({@code xfs_growfs MOUNT_POINT}).
     */
    Result grow(Filesystem fs, Path device, Path mountPoint) throws IOException;

    /** The total size in bytes of the filesystem mounted at {@code mountPoint}. */
    long filesystemSize(Path mountPoint) throws IOException;

    /** Changes the owner of a path (not following links). */
    void chown(Path path, int uid, int gid) throws IOException;
}
