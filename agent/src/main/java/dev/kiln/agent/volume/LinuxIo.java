package dev.kiln.agent.volume;

import com.sun.jna.LastErrorException;
import com.sun.jna.Library;
import com.sun.jna.Native;
import com.sun.jna.NativeLong;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.Charset;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;

/**
 * The Linux calls behind the holes proof that the JDK does not offer, through JNA: where a file's
 * first data lies ({@code lseek(SEEK_DATA)}), and what a loop device reads from
 * ({@code ioctl(LOOP_GET_STATUS64)}). JNA is a maintained library the agent already uses for
 * {@code openat}; shelling out to {@code xfs_io -c "seek -d"} and {@code losetup} would add two
 * output formats to parse and two more tools the AMI must carry.
 */
final class LinuxIo {

    private interface C extends Library {
        int open(byte[] path, int flags) throws LastErrorException;

        long lseek(int fd, long offset, int whence) throws LastErrorException;

        int ioctl(int fd, NativeLong request, byte[] arg) throws LastErrorException;

        int close(int fd) throws LastErrorException;
    }

    private static final class Holder {
        static final C C = Native.load("c", C.class);
    }

    /** {@code O_RDONLY | O_NONBLOCK | O_CLOEXEC}: the same on x86-64 and arm64. */
    private static final int READ_ONLY = 0 | 04000 | 02000000;
    private static final int SEEK_DATA = 3;
    private static final int ENXIO = 6;
    private static final int ENOTTY = 25;
    private static final int EINVAL = 22;
    /** {@code _IO('L', 0x05)}. */
    private static final long LOOP_GET_STATUS64 = 0x4C05;
    /** {@code sizeof(struct loop_info64)}: five u64, four u32, 64 + 64 + 32 bytes, two u64. */
    private static final int LOOP_INFO64_SIZE = 232;

    private static final Charset NAMES = Charset.forName(System.getProperty("sun.jnu.encoding", "UTF-8"));

    private LinuxIo() {
    }

    /**
     * What the loop device reads from.
     *
     * @throws IOException when it is not a loop device or has no backing file
     */
    static DiskTools.LoopBacking loopBacking(Path device) throws IOException {
        int fd = open(device);
        try {
            byte[] info = new byte[LOOP_INFO64_SIZE];
            try {
                Holder.C.ioctl(fd, new NativeLong(LOOP_GET_STATUS64), info);
            } catch (LastErrorException e) {
                throw new IOException(device + " is not a loop device with a backing file ("
                        + (e.getErrorCode() == ENOTTY || e.getErrorCode() == EINVAL ? "not a loop device"
                        : e.getErrorCode() == ENXIO ? "no backing file" : "error " + e.getErrorCode()) + ")");
            }
            ByteBuffer b = ByteBuffer.wrap(info).order(ByteOrder.nativeOrder());
            // struct loop_info64 { u64 lo_device, lo_inode, lo_rdevice, lo_offset, lo_sizelimit; ... }
            return new DiskTools.LoopBacking(b.getLong(0), b.getLong(8), b.getLong(24), b.getLong(32));
        } finally {
            close(fd);
        }
    }

    /**
     * The offset of the first data at or after {@code from} in {@code file}, or -1 when the rest
     * of it is one hole. The device and inode are checked on the descriptor that is searched, so
     * a file renamed into the path meanwhile is never taken for the one the loop device reads.
     *
     * @throws IOException when the file cannot be opened, is not a regular file, or is not {@code backing}'s
     */
    static long firstData(Path file, DiskTools.LoopBacking backing, long from) throws IOException {
        int fd = open(file);
        try {
            // /proc/self/fd/N leads to the open file itself, whatever its path has become.
            Map<String, Object> a = Files.readAttributes(Path.of("/proc/self/fd/" + fd), "unix:dev,ino,mode");
            long dev = (Long) a.get("dev");
            long ino = (Long) a.get("ino");
            int mode = (Integer) a.get("mode");
            if ((mode & 0170000) != 0100000) {
                throw new IOException(file + " is not a regular file");
            }
            if (!sameDevice(dev, backing.fileDevice()) || ino != backing.inode()) {
                throw new IOException(file + " is inode " + ino + " on device " + DeviceNumbers.text(dev)
                        + ", not the loop device's backing file (inode " + backing.inode() + " on device "
                        + kernelDeviceText(backing.fileDevice()) + ")");
            }
            try {
                return Holder.C.lseek(fd, from, SEEK_DATA);
            } catch (LastErrorException e) {
                if (e.getErrorCode() == ENXIO) {
                    return -1; // no data at or after from: holes (or nothing) to the end
                }
                throw new IOException("lseek(SEEK_DATA) on " + file + " failed: error " + e.getErrorCode());
            }
        } finally {
            close(fd);
        }
    }

    /**
     * Whether glibc's st_dev and the kernel's lo_device (huge_encode_dev: minor's low byte, major
     * in bits 8-19, the rest of minor above) name the same device.
     */
    static boolean sameDevice(long stDev, long loDevice) {
        return DeviceNumbers.major(stDev) == kernelMajor(loDevice) && DeviceNumbers.minor(stDev) == kernelMinor(loDevice);
    }

    private static long kernelMajor(long dev) {
        return (dev & 0xfff00L) >>> 8;
    }

    private static long kernelMinor(long dev) {
        return (dev & 0xffL) | ((dev >>> 12) & 0xfff00L);
    }

    private static String kernelDeviceText(long dev) {
        return kernelMajor(dev) + ":" + kernelMinor(dev);
    }

    private static int open(Path path) throws IOException {
        byte[] b = path.toString().getBytes(NAMES);
        try {
            return Holder.C.open(Arrays.copyOf(b, b.length + 1), READ_ONLY);
        } catch (LastErrorException e) {
            throw new IOException("cannot open " + path + ": error " + e.getErrorCode());
        }
    }

    private static void close(int fd) {
        try {
            Holder.C.close(fd);
        } catch (LastErrorException ignored) {
            // close(2) releases the descriptor even when it reports an error
        }
    }
}
