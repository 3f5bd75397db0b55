package dev.kiln.agent.volume;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;

/**
 * Everything the volume feature does to disks and filesystems: the agent's one boundary with
 * {@code blkid}, {@code wipefs}, {@code mkfs.*}, {@code fsck}, {@code mount}, {@code umount},
 * {@code fsfreeze} and the growing tools, and the raw reads of a device. {@link OsDiskTools} is the
 * real implementation. Methods report what the tool said ({@link Result}); the domain classes
 * decide what it means, so every decision lives in one place and is tested against real tools.
 */
public interface DiskTools {

    /**
     * What a finished tool printed, and its exit status.
     *
     * @param command  the command line, for messages
     * @param exitCode its exit status
     * @param stdout   what it printed on stdout
     * @param stderr   what it printed on stderr
     */
    record Result(List<String> command, int exitCode, String stdout, String stderr) {

        public boolean ok() {
            return exitCode == 0;
        }

        /** The tool's own words, for error messages: stdout and stderr, on one line. */
        public String said() {
            String text = (stdout.strip() + "\n" + stderr.strip()).strip();
            return text.replaceAll("\\s*\\n\\s*", "; ");
        }

        /** {@code "mkfs.ext4 ... exited 1: <what it said>"}. */
        public String describe() {
            return String.join(" ", command) + " exited " + exitCode + (said().isEmpty() ? "" : ": " + said());
        }
    }

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
