package dev.kiln.agent.fs;

import com.sun.jna.LastErrorException;
import com.sun.jna.Library;
import com.sun.jna.Native;

import java.io.IOException;

/**
 * Runs file operations with another account's file access on the calling thread only: Linux keeps
 * a file-system uid and gid per thread ({@code setfsuid}, {@code setfsgid}), and dropping the
 * file-system uid from 0 also drops the capabilities that bypass permission checks
 * ({@code CAP_DAC_OVERRIDE}, {@code CAP_FOWNER} and the like). The supplementary groups are
 * dropped for the call through the raw system call, which, unlike glibc's wrapper, changes this
 * thread alone. Everything is restored afterwards, and an operation never starts when the switch
 * did not take.
 */
public final class FsCredentials {

    /** An operation on files. */
    @FunctionalInterface
    public interface IoCall<T> {
        T call() throws IOException;
    }

    private interface C extends Library {
        long syscall(long number, Object... args) throws LastErrorException;

        int getgroups(int size, int[] list) throws LastErrorException;
    }

    private static final boolean ARM = System.getProperty("os.arch", "").equals("aarch64");
    private static final long SETFSUID = ARM ? 151 : 122;
    private static final long SETFSGID = ARM ? 152 : 123;
    private static final long SETGROUPS = ARM ? 159 : 116;

    private static final class Holder {
        static final C C = Native.load("c", C.class);
    }

    /** The account this thread acts as now, when switched. */
    private static final ThreadLocal<int[]> CURRENT = new ThreadLocal<>();

    private FsCredentials() {
    }

    /**
     * Runs {@code call} with the file access of {@code uid}/{@code gid} (no supplementary groups).
     * The caller must be root.
     *
     * @throws IOException when the switch does not take, or whatever {@code call} throws
     */
    public static <T> T as(int uid, int gid, IoCall<T> call) throws IOException {
        int[] before = CURRENT.get();
        if (before != null && before[0] == uid && before[1] == gid) {
            return call.call();
        }
        int[] groups = groups();
        try {
            switchTo(uid, gid, new int[0]);
        } catch (IOException e) {
            switchTo(0, 0, groups);
            throw e;
        }
        CURRENT.set(new int[]{uid, gid});
        try {
            return call.call();
        } finally {
            CURRENT.set(before);
            if (before == null) {
                switchTo(0, 0, groups);
            } else {
                switchTo(before[0], before[1], new int[0]);
            }
        }
    }

    /**
     * Runs {@code call} with root's file access again, inside {@link #as}: for the agent's own
     * trusted paths (an area's configured base), never for a path a user named.
     */
    public static <T> T asRoot(IoCall<T> call) throws IOException {
        int[] before = CURRENT.get();
        if (before == null) {
            return call.call();
        }
        int[] groups = new int[0];
        switchTo(0, 0, groups);
        CURRENT.set(null);
        try {
            return call.call();
        } finally {
            CURRENT.set(before);
            switchTo(before[0], before[1], new int[0]);
        }
    }

    /** The file-system uid this thread has now. */
    public static int fsuid() {
        return (int) Holder.C.syscall(SETFSUID, -1);
    }

    private static int[] groups() throws IOException {
        try {
            int n = Holder.C.getgroups(0, null);
            int[] list = new int[n];
            int got = Holder.C.getgroups(n, list);
            return java.util.Arrays.copyOf(list, got);
        } catch (LastErrorException e) {
            throw new IOException("getgroups failed: errno " + e.getErrorCode(), e);
        }
    }

    private static void switchTo(int uid, int gid, int[] groups) throws IOException {
        C c = Holder.C;
        try {
            if (uid == 0) {
                // Back to root first: setting groups and gid needs no file capabilities, but order
                // it so the thread is never root's uid with another account's groups for long.
                c.syscall(SETFSUID, 0);
                c.syscall(SETFSGID, gid);
                c.syscall(SETGROUPS, groups.length, groups.length == 0 ? null : groups);
            } else {
                c.syscall(SETGROUPS, groups.length, groups.length == 0 ? null : groups);
                c.syscall(SETFSGID, gid);
                c.syscall(SETFSUID, uid);
            }
        } catch (LastErrorException e) {
            throw new IOException("cannot switch this thread's file access to uid " + uid + ": errno " + e.getErrorCode(), e);
        }
        // setfsuid and setfsgid report the previous id, never an error: read back what took.
        int nowUid = (int) c.syscall(SETFSUID, -1);
        int nowGid = (int) c.syscall(SETFSGID, -1);
        if (nowUid != uid || nowGid != gid) {
            throw new IOException("this thread's file access did not switch to uid " + uid + " gid " + gid
                    + " (it is uid " + nowUid + " gid " + nowGid + ")");
        }
    }
}
