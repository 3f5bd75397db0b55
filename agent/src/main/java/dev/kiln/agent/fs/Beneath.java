package dev.kiln.agent.fs;

import java.io.IOException;
import java.nio.file.AccessDeniedException;
import java.nio.file.DirectoryStream;
import java.nio.file.FileSystemLoopException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NotDirectoryException;
import java.nio.file.Path;
import java.nio.file.SecureDirectoryStream;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.List;

/**
 * Reaches a path beneath a base directory with file descriptors, so that nobody who can write the
 * tree can send the caller out of it, however they swap directories and links meanwhile.
 *
 * <p>Every directory on the way is opened relative to the one before it with
 * {@code O_NOFOLLOW}; a symbolic link is read where it was found and followed only while it stays
 * beneath the base (an absolute target must name a place under the base; {@code ..} stops at it).
 * The result is an {@link Entry}: the open directory that holds the final name, and that name.
 * Operations then address {@code /proc/self/fd/DIR/NAME}, which the kernel resolves through the
 * open directory itself, not by its path; callers never follow a link in NAME (they pass
 * {@link LinkOption#NOFOLLOW_LINKS}), because it is looked up again when they use it.
 */
public final class Beneath {

    /** At most this many symbolic links are followed while reaching one path (as Linux's ELOOP). */
    public static final int MAX_LINKS = 40;

    private static final Path FDS = Path.of("/proc/self/fd");

    private Beneath() {
    }

    /**
     * A name in an open directory: what a path reached.
     *
     * <p>{@link #name()} is {@code "."} when the path is the directory itself (the base, or a
     * path ending in {@code ..}). Close it to release the directory.
     */
    public static final class Entry implements AutoCloseable {
        private final int dirfd;
        private final String name;
        private final boolean top;
        private boolean closed;

        Entry(int dirfd, String name, boolean top) {
            this.dirfd = dirfd;
            this.name = name;
            this.top = top;
        }

        /** The final name ({@code "."} for the directory itself). */
        public String name() {
            return name;
        }

        /** Whether this is the base directory itself. */
        public boolean isBase() {
            return top && name.equals(".");
        }

        /** The open directory that holds the name, as a path the kernel resolves by descriptor. */
        public Path directory() {
            return FDS.resolve(Integer.toString(dirfd));
        }

        /**
         * The entry as a path to use with {@link LinkOption#NOFOLLOW_LINKS}: only its last name is
         * looked up again, in the open directory.
         */
        public Path path() {
            return directory().resolve(name);
        }

        /**
         * Opens the entry as a directory without following a link in its name (a directory that
         * became a link meanwhile is refused).
         */
        public DirectoryStream<Path> openDirectory() throws IOException {
            DirectoryStream<Path> parent = Files.newDirectoryStream(directory());
            try {
                if (!(parent instanceof SecureDirectoryStream<Path> sds)) {
                    throw new IOException("this platform has no openat-style directory access");
                }
                return sds.newDirectoryStream(Path.of(name), LinkOption.NOFOLLOW_LINKS);
            } finally {
                parent.close();
            }
        }

        @Override
        public void close() {
            if (!closed) {
                closed = true;
                Libc.close(dirfd);
            }
        }
    }

    /**
     * Reaches {@code names} beneath {@code base}.
     *
     * @param base        an absolute path with no symbolic links in it, trusted: it is opened from
     *                    {@code /} with no-follow at every step, so a link put there later fails,
     *                    and with the agent's own access (see {@link FsCredentials#asRoot}); what
     *                    lies beneath it is reached with the caller's
     * @param names       the names under the base (no {@code /} in a name; {@code ..} allowed)
     * @param followFinal whether a symbolic link in the last name is followed
     * @param shown       the path to name in errors (the user's view, never the real one)
     * @param outside     the reason given when a link leads outside the base
     * @throws AccessDeniedException    when a link leads outside the base
     * @throws FileSystemLoopException  after {@link #MAX_LINKS} links
     * @throws java.nio.file.NoSuchFileException when a directory on the way does not exist
     * @throws NotDirectoryException    when a name on the way is not a directory
     */
    public static Entry reach(Path base, List<String> names, boolean followFinal, String shown, String outside)
            throws IOException {
        Deque<Integer> dirs = new ArrayDeque<>();
        try {
            dirs.push(openBase(base, shown));
            Deque<String> todo = new ArrayDeque<>(names);
            int links = 0;
            while (!todo.isEmpty()) {
                String n = todo.pollFirst();
                if (n.isEmpty() || n.equals(".")) {
                    continue;
                }
                if (n.equals("..")) {
                    if (dirs.size() == 1) {
                        throw new AccessDeniedException(shown, null, outside);
                    }
                    Libc.close(dirs.pop());
                    continue;
                }
                if (n.indexOf('/') >= 0 || n.indexOf('\0') >= 0) {
                    throw new java.nio.file.NoSuchFileException(shown);
                }
                boolean last = todo.stream().allMatch(t -> t.isEmpty() || t.equals("."));
                String target;
                try {
                    target = Libc.readlinkat(dirs.peek(), n, shown);
                } catch (java.nio.file.NoSuchFileException e) {
                    if (!last) {
                        throw e;
                    }
                    return entry(dirs, n); // a name to create
                }
                if (target == null && !last) {
                    try {
                        dirs.push(Libc.openat(dirs.peek(), n, Libc.DIRECTORY_NOFOLLOW, shown));
                        continue;
                    } catch (NotDirectoryException e) {
                        // A file, or a link put there since readlinkat: look again.
                        target = Libc.readlinkat(dirs.peek(), n, shown);
                        if (target == null) {
                            throw e;
                        }
                    }
                }
                if (target != null && (!last || followFinal)) {
                    if (++links > MAX_LINKS) {
                        throw new FileSystemLoopException(shown);
                    }
                    List<String> parts = new ArrayList<>(List.of(target.split("/")));
                    if (target.startsWith("/")) {
                        Path norm = Path.of(target).normalize();
                        if (!norm.startsWith(base)) {
                            throw new AccessDeniedException(shown, null, outside);
                        }
                        while (dirs.size() > 1) {
                            Libc.close(dirs.pop());
                        }
                        parts.clear();
                        for (Path p : base.relativize(norm)) {
                            parts.add(p.toString());
                        }
                    }
                    for (int i = parts.size() - 1; i >= 0; i--) {
                        todo.addFirst(parts.get(i));
                    }
                    continue;
                }
                return entry(dirs, n);
            }
            return entry(dirs, ".");
        } catch (IOException | RuntimeException e) {
            dirs.forEach(Libc::close);
            throw e;
        }
    }

    /**
     * Holds a trusted directory open, reached from {@code /} with no-follow at every step: a
     * directory put in its place later (by a rename, or as a link) is not the one held.
     *
     * @return the held directory; {@link Entry#directory()} names it through its descriptor
     */
    public static Entry hold(Path dir) throws IOException {
        Path abs = dir.toAbsolutePath().normalize();
        return new Entry(openBase(abs, abs.toString()), ".", true);
    }

    /** What is done to each directory {@link #makeDirectories} creates, through a no-follow path. */
    @FunctionalInterface
    public interface Made {
        void made(Path noFollow) throws IOException;
    }

    /**
     * Creates the missing directories of {@code dir} with the agent's access, with no-follow at
     * every step from its nearest existing ancestor; {@code made} is called on each new directory
     * (a path for {@link LinkOption#NOFOLLOW_LINKS}) while it is held open. Only under an
     * ancestor nobody but root can change (see {@link #onlyRootCanChange}): elsewhere a link put
     * on the way could lead root's mkdir, and the hand-over in {@code made}, anywhere.
     *
     * @throws java.nio.file.AccessDeniedException when the nearest existing ancestor is not one
     *                                              only root can change
     */
    public static void makeDirectories(Path dir, Made made) throws IOException {
        Path abs = dir.toAbsolutePath().normalize();
        Path existing = abs;
        Deque<String> missing = new ArrayDeque<>();
        while (existing.getParent() != null && !Files.exists(existing, LinkOption.NOFOLLOW_LINKS)) {
            missing.addFirst(existing.getFileName().toString());
            existing = existing.getParent();
        }
        if (!onlyRootCanChange(existing)) {
            throw new java.nio.file.AccessDeniedException(abs.toString(), null, existing
                    + " can be changed by a user other than root, so root does not create directories in it");
        }
        String shown = abs.toString();
        int fd = openBase(existing.toRealPath(), shown);
        try {
            for (String name : missing) {
                Path at = FDS.resolve(Integer.toString(fd)).resolve(name);
                Files.createDirectory(at);
                made.made(at);
                int next = Libc.openat(fd, name, Libc.DIRECTORY_NOFOLLOW, shown);
                Libc.close(fd);
                fd = next;
            }
        } finally {
            Libc.close(fd);
        }
    }

    /**
     * Whether only root can change what {@code path} leads to: every entry on the way, as written
     * and as resolved, belongs to root and sits in a directory that nobody else may write, or one
     * with the sticky bit (where others cannot rename or remove root's entries), and so does
     * {@code path} itself; then no entry on the way, a link included, can be replaced by another
     * user.
     */
    public static boolean onlyRootCanChange(Path path) throws IOException {
        Path abs = path.toAbsolutePath().normalize();
        Path real = abs.toRealPath();
        return rootsAllTheWay(abs) && rootsAllTheWay(real) && guards(real);
    }

    /** Every entry from {@code abs} up belongs to root and sits in a directory that guards it. */
    private static boolean rootsAllTheWay(Path abs) throws IOException {
        for (Path p = abs; p.getParent() != null; p = p.getParent()) {
            if ((Integer) Files.getAttribute(p, "unix:uid", LinkOption.NOFOLLOW_LINKS) != 0 || !guards(p.getParent())) {
                return false;
            }
        }
        return true;
    }

    /** A directory whose entries only root (or, when sticky, only their owners) can replace. */
    private static boolean guards(Path dir) throws IOException {
        java.util.Map<String, Object> a = Files.readAttributes(dir, "unix:uid,mode", LinkOption.NOFOLLOW_LINKS);
        int mode = (Integer) a.get("mode");
        return (Integer) a.get("uid") == 0 && ((mode & 0022) == 0 || (mode & 01000) != 0);
    }

    /** The top of {@code dirs} holding {@code name}; the other directories are closed. */
    private static Entry entry(Deque<Integer> dirs, String name) {
        boolean top = dirs.size() == 1;
        int fd = dirs.pop();
        dirs.forEach(Libc::close);
        dirs.clear();
        return new Entry(fd, name, top);
    }

    /** Opens the trusted base with the agent's own access, whoever the operation runs as. */
    private static int openBase(Path base, String shown) throws IOException {
        if (!base.isAbsolute()) {
            throw new IllegalArgumentException("not an absolute path: " + base);
        }
        return FsCredentials.asRoot(() -> walkBase(base, shown));
    }

    private static int walkBase(Path base, String shown) throws IOException {
        int fd = Libc.openat(-100 /* AT_FDCWD */, "/", Libc.DIRECTORY_NOFOLLOW, shown);
        try {
            for (Path p : base) {
                int next = Libc.openat(fd, p.toString(), Libc.DIRECTORY_NOFOLLOW, shown);
                Libc.close(fd);
                fd = next;
            }
            return fd;
        } catch (IOException | RuntimeException e) {
            Libc.close(fd);
            throw e;
        }
    }
}
