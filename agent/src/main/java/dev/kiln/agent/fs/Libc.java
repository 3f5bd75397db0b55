package dev.kiln.agent.fs;

import com.sun.jna.LastErrorException;
import com.sun.jna.Library;
import com.sun.jna.Native;

import java.io.IOException;
import java.nio.charset.Charset;
import java.nio.file.AccessDeniedException;
import java.nio.file.FileSystemException;
import java.nio.file.FileSystemLoopException;
import java.nio.file.NoSuchFileException;
import java.nio.file.NotDirectoryException;
import java.util.Arrays;

/**
 * The few Linux calls the JDK does not offer: opening and reading a link relative to a directory
 * descriptor ({@code openat}, {@code readlinkat}), through JNA. Names are encoded as the JDK
 * encodes file names ({@code sun.jnu.encoding}), so both address the same directory entries.
 */
final class Libc {

    private interface C extends Library {
        int openat(int dirfd, byte[] path, int flags, int mode) throws LastErrorException;

        long readlinkat(int dirfd, byte[] path, byte[] buf, long size) throws LastErrorException;

        int close(int fd) throws LastErrorException;
    }

    static final int ENOENT = 2;
    static final int EACCES = 13;
    static final int ENOTDIR = 20;
    static final int EINVAL = 22;
    static final int ELOOP = 40;

    /** {@code O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC}: a directory to walk from, never a link. */
    static final int DIRECTORY_NOFOLLOW;

    static {
        // O_DIRECTORY and O_NOFOLLOW differ between x86-64 and arm64 (EC2's Graviton).
        boolean arm = System.getProperty("os.arch", "").equals("aarch64");
        int oDirectory = arm ? 040000 : 0200000;
        int oNofollow = arm ? 0100000 : 0400000;
        int oPath = 010000000;
        int oCloexec = 02000000;
        DIRECTORY_NOFOLLOW = oPath | oDirectory | oNofollow | oCloexec;
    }

    private static final Charset NAMES = Charset.forName(System.getProperty("sun.jnu.encoding", "UTF-8"));

    private static final class Holder {
        static final C C = Native.load("c", C.class);
    }

    private Libc() {
    }

    /** A file name as a NUL-terminated C string. */
    static byte[] name(String s) {
        byte[] b = s.getBytes(NAMES);
        return Arrays.copyOf(b, b.length + 1);
    }

    /** {@code openat(dirfd, name, flags)}; errors as the JDK's exceptions, naming {@code shown}. */
    static int openat(int dirfd, String name, int flags, String shown) throws IOException {
        try {
            return Holder.C.openat(dirfd, name(name), flags, 0);
        } catch (LastErrorException e) {
            throw error(e.getErrorCode(), shown);
        }
    }

    /**
     * The target of the symbolic link {@code name} in {@code dirfd}, or null when it is not a link.
     *
     * @throws NoSuchFileException when there is no such entry
     */
    static String readlinkat(int dirfd, String name, String shown) throws IOException {
        byte[] buf = new byte[4097];
        long n;
        try {
            n = Holder.C.readlinkat(dirfd, name(name), buf, buf.length);
        } catch (LastErrorException e) {
            if (e.getErrorCode() == EINVAL) {
                return null;
            }
            throw error(e.getErrorCode(), shown);
        }
        if (n >= buf.length) {
            throw new FileSystemException(shown, null, "symbolic link target is too long");
        }
        return new String(buf, 0, (int) n, NAMES);
    }

    static void close(int fd) {
        try {
            Holder.C.close(fd);
        } catch (LastErrorException ignored) {
            // close(2) releases the descriptor even when it reports an error
        }
    }

    static IOException error(int errno, String shown) {
        return switch (errno) {
            case ENOENT -> new NoSuchFileException(shown);
            case ENOTDIR -> new NotDirectoryException(shown);
            case EACCES, 1 -> new AccessDeniedException(shown);
            case ELOOP -> new FileSystemLoopException(shown);
            default -> new FileSystemException(shown, null, "error " + errno);
        };
    }
}
