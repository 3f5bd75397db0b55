package dev.kiln.agent.serve;

import dev.kiln.agent.fs.Beneath;
import dev.kiln.agent.fs.FsAccess;
import dev.kiln.agent.fs.FsCredentials;
import org.apache.sshd.common.file.root.RootedFileSystem;
import org.apache.sshd.common.file.root.RootedFileSystemProvider;
import org.apache.sshd.common.file.root.RootedPath;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Proxy;
import java.nio.channels.AsynchronousFileChannel;
import java.nio.channels.Channels;
import java.nio.channels.FileChannel;
import java.nio.channels.SeekableByteChannel;
import java.nio.file.AccessDeniedException;
import java.nio.file.AccessMode;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.CopyOption;
import java.nio.file.DirectoryNotEmptyException;
import java.nio.file.DirectoryStream;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.FileStore;
import java.nio.file.FileSystemException;
import java.nio.file.FileSystemLoopException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.NotDirectoryException;
import java.nio.file.NotLinkException;
import java.nio.file.OpenOption;
import java.nio.file.Path;
import java.nio.file.ProviderMismatchException;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.BasicFileAttributes;
import java.nio.file.attribute.FileAttribute;
import java.nio.file.attribute.FileAttributeView;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.NoSuchElementException;
import java.util.Set;
import java.util.concurrent.ExecutorService;

/**
 * Maps the paths of a {@link TreeFileSystem} onto real files, enforcing the serving rules in one
 * place, for SFTP, scp and the checksum commands alike:
 * <ul>
 *   <li>every path is reached by {@link ServedTree#locate}, with file descriptors, so {@code ..}
 *       cannot climb out, symbolic links that lead outside their area are refused, and a tree
 *       that changes meanwhile (a directory swapped for a link) cannot send an operation
 *       elsewhere;</li>
 *   <li>anything that would change a read-only area ({@code /} itself and {@code /outputs}):
 *       opening for writing, creating, deleting, renaming, changing attributes, linking, is
 *       refused with {@link AccessDeniedException} ("permission denied" to SFTP and scp);</li>
 *   <li>error messages carry the user's paths, never the real ones;</li>
 *   <li>nobody changes a file's owner or group;</li>
 *   <li>every operation runs with the file access of the session's account
 *       ({@link TreeFileSystem#access()}, see {@link ServeAccounts}), so files the owner creates
 *       belong to that account, and a fault in these rules still cannot reach what that account
 *       may not.</li>
 * </ul>
 * The real operation runs on the reached entry ({@link ServedTree.Located#path()}) with
 * {@link LinkOption#NOFOLLOW_LINKS}.
 */
public final class TreeFileSystemProvider extends RootedFileSystemProvider {

    private static final Set<OpenOption> WRITE_OPTIONS = Set.of(StandardOpenOption.WRITE, StandardOpenOption.APPEND,
            StandardOpenOption.CREATE, StandardOpenOption.CREATE_NEW, StandardOpenOption.TRUNCATE_EXISTING,
            StandardOpenOption.DELETE_ON_CLOSE);

    public TreeFileSystemProvider() {
    }

    /** A new file system for one session of a user. */
    public TreeFileSystem newTreeFileSystem(Path emptyRoot, ServedTree tree, UserKind kind, FsAccess access) {
        return new TreeFileSystem(this, emptyRoot, tree, kind, access);
    }

    // ---------------------------------------------------------------- resolution

    private static TreeFileSystem fs(Path p) {
        if (!(p instanceof RootedPath rp) || !(rp.getFileSystem() instanceof TreeFileSystem tfs)) {
            throw new ProviderMismatchException("not a path of a served tree: " + p);
        }
        return tfs;
    }

    private static List<String> names(Path p) {
        Path abs = p.toAbsolutePath();
        List<String> names = new ArrayList<>();
        for (Path n : abs) {
            names.add(n.toString());
        }
        return names;
    }

    /** Runs an operation on {@code p} with the file access of its session's account. */
    private static <T> T io(Path p, FsCredentials.IoCall<T> call) throws IOException {
        return fs(p).access().run(call);
    }

    /** Runs an operation on the empty {@code /} (the agent's own directory) with root's access. */
    private static <T> T onRoot(ServedTree.Located r, FsCredentials.IoCall<T> call) throws IOException {
        return r.isRoot() ? FsCredentials.asRoot(call) : call.call();
    }

    /** Reaches a path; close the result when done. */
    ServedTree.Located locate(Path p, boolean follow) throws IOException {
        return fs(p).tree().locate(names(p), follow);
    }

    /** What operations address: the entry, or the file system's empty directory for {@code /}. */
    private static Path real(Path p, ServedTree.Located r) {
        return r.isRoot() ? fs(p).getRoot() : r.path();
    }

    private static boolean follow(LinkOption... options) {
        for (LinkOption o : options) {
            if (o == LinkOption.NOFOLLOW_LINKS) {
                return false;
            }
        }
        return true;
    }

    private static AccessDeniedException readOnly(ServedTree.Located r) {
        return new AccessDeniedException(r.virtualPath(), null, r.isRoot() ? "/ is read-only" : "/" + r.area().name() + " is read-only");
    }

    /** Reaches a path that is about to change: it must be in a writable area. */
    ServedTree.Located changing(Path p, boolean follow) throws IOException {
        ServedTree.Located r;
        try {
            r = locate(p, follow);
        } catch (NoSuchFileException e) {
            List<String> names = ServedTree.normalise(names(p));
            if (names.size() <= 1) {
                throw new AccessDeniedException(ServedTree.virtual(names), null, "/ is read-only");
            }
            throw e;
        }
        if (!r.writable()) {
            r.close();
            throw readOnly(r);
        }
        return r;
    }

    /** The same kind of exception, naming the user's path, never the real one. */
    private static IOException translate(IOException e, ServedTree.Located r) {
        String file = r.virtualPath();
        if (e instanceof FileSystemException fse) {
            String reason = fse.getReason();
            if (e instanceof NoSuchFileException) {
                return new NoSuchFileException(file, null, reason);
            } else if (e instanceof AccessDeniedException) {
                return new AccessDeniedException(file, null, reason);
            } else if (e instanceof FileAlreadyExistsException) {
                return new FileAlreadyExistsException(file, null, reason);
            } else if (e instanceof DirectoryNotEmptyException) {
                return new DirectoryNotEmptyException(file);
            } else if (e instanceof NotDirectoryException) {
                return new NotDirectoryException(file);
            } else if (e instanceof NotLinkException) {
                return new NotLinkException(file);
            } else if (e instanceof FileSystemLoopException) {
                return new FileSystemLoopException(file);
            } else if (e instanceof AtomicMoveNotSupportedException) {
                return new AtomicMoveNotSupportedException(file, null, reason);
            }
            return new FileSystemException(file, null, reason);
        }
        return new IOException(file + ": " + e.getClass().getSimpleName());
    }

    private static boolean writes(Set<? extends OpenOption> options) {
        for (OpenOption o : options) {
            if (WRITE_OPTIONS.contains(o)) {
                return true;
            }
        }
        return false;
    }

    private static Set<OpenOption> noFollow(Set<? extends OpenOption> options) {
        Set<OpenOption> set = new HashSet<>(options);
        set.add(LinkOption.NOFOLLOW_LINKS);
        return set;
    }

    // ---------------------------------------------------------------- files

    @Override
    public SeekableByteChannel newByteChannel(Path path, Set<? extends OpenOption> options, FileAttribute<?>... attrs)
            throws IOException {
        return newFileChannel(path, options, attrs);
    }

    @Override
    public FileChannel newFileChannel(Path path, Set<? extends OpenOption> options, FileAttribute<?>... attrs)
            throws IOException {
        return io(path, () -> {
            boolean follow = !options.contains(LinkOption.NOFOLLOW_LINKS);
            boolean write = writes(options);
            try (ServedTree.Located r = write ? changing(path, follow) : locate(path, follow)) {
                if (r.isRoot()) {
                    throw new FileSystemException("/", null, "is a directory");
                }
                try {
                    return FileChannel.open(r.path(), noFollow(options), attrs);
                } catch (IOException e) {
                    throw translate(e, r);
                }
            }
        });
    }

    @Override
    public InputStream newInputStream(Path path, OpenOption... options) throws IOException {
        return Channels.newInputStream(newFileChannel(path, Set.of(options.length == 0 ? new OpenOption[]{StandardOpenOption.READ} : options)));
    }

    @Override
    public OutputStream newOutputStream(Path path, OpenOption... options) throws IOException {
        Set<OpenOption> set = new HashSet<>(List.of(options));
        if (set.isEmpty()) {
            set.addAll(List.of(StandardOpenOption.CREATE, StandardOpenOption.TRUNCATE_EXISTING));
        }
        set.add(StandardOpenOption.WRITE);
        return Channels.newOutputStream(newFileChannel(path, set));
    }

    @Override
    public AsynchronousFileChannel newAsynchronousFileChannel(Path path, Set<? extends OpenOption> options,
            ExecutorService executor, FileAttribute<?>... attrs) throws IOException {
        throw new UnsupportedOperationException("asynchronous channels are not served");
    }

    // ---------------------------------------------------------------- directories

    @Override
    public DirectoryStream<Path> newDirectoryStream(Path dir, DirectoryStream.Filter<? super Path> filter) throws IOException {
        return io(dir, () -> {
            Path rooted = dir;
            DirectoryStream<Path> opened;
            try (ServedTree.Located r = locate(dir, true)) {
                if (r.isRoot()) {
                    List<Path> entries = new ArrayList<>();
                    for (Area a : fs(dir).tree().areas()) {
                        Path p = rooted.resolve(a.name());
                        if (filter == null || filter.accept(p)) {
                            entries.add(p);
                        }
                    }
                    return new ListStream(entries.iterator());
                }
                try {
                    opened = r.entry().openDirectory();
                } catch (IOException e) {
                    throw translate(e, r);
                }
            }
            return mapped(rooted, opened, filter);
        });
    }

    /** The entries of {@code real} as paths under {@code rooted}, filtered. */
    private static DirectoryStream<Path> mapped(Path rooted, DirectoryStream<Path> real,
            DirectoryStream.Filter<? super Path> filter) {
        Iterator<Path> it = real.iterator();
        Iterator<Path> mapped = new Iterator<>() {
            Path next;

            @Override
            public boolean hasNext() {
                while (next == null && it.hasNext()) {
                    Path p = rooted.resolve(it.next().getFileName().toString());
                    try {
                        if (filter == null || filter.accept(p)) {
                            next = p;
                        }
                    } catch (IOException e) {
                        throw new java.io.UncheckedIOException(e);
                    }
                }
                return next != null;
            }

            @Override
            public Path next() {
                if (!hasNext()) {
                    throw new NoSuchElementException();
                }
                Path p = next;
                next = null;
                return p;
            }
        };
        return new DirectoryStream<>() {
            @Override
            public Iterator<Path> iterator() {
                return mapped;
            }

            @Override
            public void close() throws IOException {
                real.close();
            }
        };
    }

    private record ListStream(Iterator<Path> it) implements DirectoryStream<Path> {
        @Override
        public Iterator<Path> iterator() {
            return it;
        }

        @Override
        public void close() {
        }
    }

    @Override
    public void createDirectory(Path dir, FileAttribute<?>... attrs) throws IOException {
        io(dir, () -> {
            try (ServedTree.Located r = changing(dir, false)) {
                try {
                    Files.createDirectory(r.path(), attrs);
                } catch (IOException e) {
                    throw translate(e, r);
                }
            }
            return null;
        });
    }

    // ---------------------------------------------------------------- links

    @Override
    public void createSymbolicLink(Path link, Path target, FileAttribute<?>... attrs) throws IOException {
        io(link, () -> {
            try (ServedTree.Located r = changing(link, false)) {
                // Only relative links, judged by where they land from the directory that really holds
                // them (a typed path can run through links of its own).
                String text = target.toString();
                if (target.isAbsolute() || text.startsWith("/")) {
                    throw new AccessDeniedException(r.virtualPath(), null, "only relative symbolic links are allowed");
                }
                String outside = "symbolic link would lead outside /" + r.area().name();
                Path holder;
                try {
                    holder = Files.readSymbolicLink(r.entry().directory());
                } catch (IOException e) {
                    throw translate(e, r);
                }
                if (!holder.startsWith(r.area().base())) {
                    throw new AccessDeniedException(r.virtualPath(), null, outside);
                }
                List<String> names = new ArrayList<>();
                for (Path n : r.area().base().relativize(holder)) {
                    if (!n.toString().isEmpty()) {
                        names.add(n.toString());
                    }
                }
                int depth = names.size();
                for (String n : text.split("/")) {
                    if (n.equals("..")) {
                        if (--depth < 0) {
                            throw new AccessDeniedException(r.virtualPath(), null, outside);
                        }
                    } else if (!n.isEmpty() && !n.equals(".")) {
                        depth++;
                    }
                    names.add(n);
                }
                // Through links already there, it must still land inside the area.
                try (var landed = Beneath.reach(r.area().base(), names, true, r.virtualPath(), outside)) {
                    // inside
                } catch (AccessDeniedException | FileSystemLoopException e) {
                    throw e;
                } catch (IOException e) {
                    // a dangling or not-yet-made target is allowed: it is judged again whenever used
                }
                try {
                    Files.createSymbolicLink(r.path(), r.path().getFileSystem().getPath(text));
                } catch (IOException e) {
                    throw translate(e, r);
                }
            }
            return null;
        });
    }

    @Override
    public void createLink(Path link, Path existing) throws IOException {
        io(link, () -> {
            try (ServedTree.Located r = changing(link, false)) {
                throw new AccessDeniedException(r.virtualPath(), null, "hard links are not allowed");
            }
        });
    }

    @Override
    public Path readSymbolicLink(Path link) throws IOException {
        return io(link, () -> {
            Path target;
            try (ServedTree.Located r = locate(link, false)) {
                if (r.isRoot()) {
                    throw new NotLinkException("/");
                }
                try {
                    target = Files.readSymbolicLink(r.path());
                } catch (IOException e) {
                    throw translate(e, r);
                }
                if (!target.isAbsolute()) {
                    return link.getFileSystem().getPath(target.toString());
                }
                String virtual = fs(link).tree().virtualOf(target).orElseThrow(() ->
                        new AccessDeniedException(r.virtualPath(), null, "symbolic link leads outside the served tree"));
                return link.getFileSystem().getPath(virtual);
            }
        });
    }

    // ---------------------------------------------------------------- changes

    @Override
    public void delete(Path path) throws IOException {
        io(path, () -> {
            try (ServedTree.Located r = changing(path, false)) {
                if (r.isArea()) {
                    throw new AccessDeniedException(r.virtualPath(), null, "an area cannot be deleted");
                }
                try {
                    Files.delete(r.path());
                } catch (IOException e) {
                    throw translate(e, r);
                }
            }
            return null;
        });
    }

    @Override
    public boolean deleteIfExists(Path path) throws IOException {
        return io(path, () -> {
            try (ServedTree.Located r = changing(path, false)) {
                if (!Files.exists(r.path(), LinkOption.NOFOLLOW_LINKS)) {
                    return false;
                }
            }
            delete(path);
            return true;
        });
    }

    @Override
    public void copy(Path source, Path target, CopyOption... options) throws IOException {
        io(source, () -> {
            try (ServedTree.Located s = locate(source, true); ServedTree.Located t = changing(target, false)) {
                if (s.isRoot()) {
                    throw new AccessDeniedException("/", null, "cannot copy /");
                }
                List<CopyOption> opts = new ArrayList<>(List.of(options));
                opts.add(LinkOption.NOFOLLOW_LINKS);
                try {
                    Files.copy(s.path(), t.path(), opts.toArray(new CopyOption[0]));
                } catch (IOException e) {
                    throw translate(e, t);
                }
            }
            return null;
        });
    }

    @Override
    public void move(Path source, Path target, CopyOption... options) throws IOException {
        io(source, () -> {
            try (ServedTree.Located s = changing(source, false); ServedTree.Located t = changing(target, false)) {
                if (s.area() != t.area() || s.isArea() || t.isArea()) {
                    throw new AccessDeniedException(s.virtualPath(), t.virtualPath(), "cannot move an area, or between areas");
                }
                List<CopyOption> opts = new ArrayList<>(List.of(options));
                opts.remove(StandardCopyOption.COPY_ATTRIBUTES);
                try {
                    Files.move(s.path(), t.path(), opts.toArray(new CopyOption[0]));
                } catch (IOException e) {
                    throw translate(e, s);
                }
            }
            return null;
        });
    }

    /** Owners and groups stay as the agent sets them: a user could otherwise give a file to root. */
    private static boolean changesOwner(String attribute) {
        String name = attribute.substring(attribute.indexOf(':') + 1);
        return name.equals("owner") || name.equals("group") || name.equals("uid") || name.equals("gid");
    }

    @Override
    public void setAttribute(Path path, String attribute, Object value, LinkOption... options) throws IOException {
        io(path, () -> {
            try (ServedTree.Located r = changing(path, follow(options))) {
                if (changesOwner(attribute)) {
                    throw new AccessDeniedException(r.virtualPath(), null, "changing a file's owner or group is not allowed");
                }
                try {
                    Files.setAttribute(r.path(), attribute, value, LinkOption.NOFOLLOW_LINKS);
                } catch (IOException e) {
                    throw translate(e, r);
                }
            }
            return null;
        });
    }

    // ---------------------------------------------------------------- queries

    @Override
    public boolean isSameFile(Path path, Path path2) throws IOException {
        return io(path, () -> {
            try (ServedTree.Located a = locate(path, true); ServedTree.Located b = locate(path2, true)) {
                Object ka = onRoot(a, () -> Files.readAttributes(real(path, a), BasicFileAttributes.class,
                        LinkOption.NOFOLLOW_LINKS).fileKey());
                Object kb = onRoot(b, () -> Files.readAttributes(real(path2, b), BasicFileAttributes.class,
                        LinkOption.NOFOLLOW_LINKS).fileKey());
                return ka != null && ka.equals(kb);
            }
        });
    }

    @Override
    public boolean isHidden(Path path) throws IOException {
        Path name = path.getFileName();
        return name != null && name.toString().startsWith(".");
    }

    @Override
    public FileStore getFileStore(Path path) throws IOException {
        return io(path, () -> {
            try (ServedTree.Located r = locate(path, true)) {
                // The area's own directory: the file system a path is on is the area's (a path's own
                // statfs would need its real path).
                Path real = r.isRoot() ? fs(path).tree().areas().get(0).base() : r.area().base();
                try {
                    return FsCredentials.asRoot(() -> Files.getFileStore(real)); // the configured base: trusted
                } catch (IOException e) {
                    throw translate(e, r);
                }
            }
        });
    }

    @Override
    public void checkAccess(Path path, AccessMode... modes) throws IOException {
        io(path, () -> {
            try (ServedTree.Located r = locate(path, true)) {
                for (AccessMode m : modes) {
                    if (m == AccessMode.WRITE && !r.writable()) {
                        throw readOnly(r);
                    }
                }
                try {
                    Path real = real(path, r);
                    onRoot(r, () -> {
                        if (!Files.exists(real, LinkOption.NOFOLLOW_LINKS)) {
                            throw new NoSuchFileException(r.virtualPath());
                        }
                        real.getFileSystem().provider().checkAccess(real, modes);
                        return null;
                    });
                } catch (IOException e) {
                    throw translate(e, r);
                }
            }
            return null;
        });
    }

    /**
     * A view that reaches the path again at each call, so a view kept by a caller cannot be sent
     * elsewhere; its {@code set...} methods need a writable area, and owners and groups never change.
     */
    @Override
    @SuppressWarnings("unchecked")
    public <V extends FileAttributeView> V getFileAttributeView(Path path, Class<V> type, LinkOption... options) {
        V probe = Files.getFileAttributeView(fs(path).getRoot(), type, LinkOption.NOFOLLOW_LINKS);
        if (probe == null) {
            return null;
        }
        boolean follow = follow(options);
        return (V) Proxy.newProxyInstance(type.getClassLoader(), new Class<?>[]{type}, (proxy, method, args) -> {
            String m = method.getName();
            if (method.getDeclaringClass() == Object.class || m.equals("name")) {
                return m.equals("equals") ? proxy == args[0] : method.invoke(probe, args);
            }
            boolean set = m.startsWith("set");
            return io(path, () -> {
                try (ServedTree.Located r = set ? changing(path, follow) : locate(path, follow)) {
                    if (m.equals("setOwner") || m.equals("setGroup")) {
                        throw new AccessDeniedException(r.virtualPath(), null, "changing a file's owner or group is not allowed");
                    }
                    return onRoot(r, () -> invoke(Files.getFileAttributeView(real(path, r), type, LinkOption.NOFOLLOW_LINKS),
                            method, args, r));
                }
            });
        });
    }

    /** Calls a view's method, its I/O errors naming the user's path. */
    private static Object invoke(Object view, java.lang.reflect.Method method, Object[] args, ServedTree.Located r)
            throws IOException {
        try {
            return method.invoke(view, args);
        } catch (InvocationTargetException e) {
            Throwable c = e.getCause();
            if (c instanceof IOException io) {
                throw translate(io, r);
            } else if (c instanceof RuntimeException re) {
                throw re;
            } else if (c instanceof Error er) {
                throw er;
            }
            throw new IOException(c);
        } catch (IllegalAccessException e) {
            throw new IllegalStateException(e);
        }
    }

    @Override
    public <A extends BasicFileAttributes> A readAttributes(Path path, Class<A> type, LinkOption... options) throws IOException {
        return io(path, () -> {
            try (ServedTree.Located r = locate(path, follow(options))) {
                try {
                    return onRoot(r, () -> Files.readAttributes(real(path, r), type, LinkOption.NOFOLLOW_LINKS));
                } catch (IOException e) {
                    throw translate(e, r);
                }
            }
        });
    }

    @Override
    public Map<String, Object> readAttributes(Path path, String attributes, LinkOption... options) throws IOException {
        return io(path, () -> {
            try (ServedTree.Located r = locate(path, follow(options))) {
                try {
                    return onRoot(r, () -> Files.readAttributes(real(path, r), attributes, LinkOption.NOFOLLOW_LINKS));
                } catch (IOException e) {
                    throw translate(e, r);
                }
            }
        });
    }

    // ---------------------------------------------------------------- what MINA's base class would do unrooted

    /** Real paths are never handed out: they could be used after the tree changed. */
    @Override
    protected Path resolveLocalPath(RootedPath path) {
        throw new UnsupportedOperationException("paths of a served tree have no real path");
    }

    @Override
    protected Path root(RootedFileSystem rfs, Path nat) {
        TreeFileSystem tfs = (TreeFileSystem) rfs;
        return rfs.getPath(tfs.tree().virtualOf(nat).orElse("/"));
    }
}
