package dev.kiln.agent.serve;

import dev.kiln.agent.fs.FsAccess;

import org.apache.sshd.common.file.root.RootedFileSystem;
import org.apache.sshd.common.file.root.RootedPath;

import java.io.File;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

/**
 * A user's tree as a {@link java.nio.file.FileSystem} for MINA's SFTP subsystem and the scp and
 * checksum commands. Paths are MINA's rooted paths; every operation goes through
 * {@link TreeFileSystemProvider}, which maps them onto the areas of a {@link ServedTree}.
 */
public final class TreeFileSystem extends RootedFileSystem {

    private final ServedTree tree;
    private final UserKind kind;
    private final FsAccess access;

    TreeFileSystem(TreeFileSystemProvider provider, Path emptyRoot, ServedTree tree, UserKind kind, FsAccess access) {
        super(provider, emptyRoot, Map.of());
        this.tree = tree;
        this.kind = kind;
        this.access = access;
    }

    /** Whose file access this user's operations run with. */
    public FsAccess access() {
        return access;
    }

    public ServedTree tree() {
        return tree;
    }

    public UserKind kind() {
        return kind;
    }

    @Override
    protected RootedPath create(String root, List<String> names) {
        return new TreePath(this, root, names);
    }

    /** A path of the user's tree. It has no {@link File}: real paths are not handed out. */
    static final class TreePath extends RootedPath {
        TreePath(TreeFileSystem fs, String root, List<String> names) {
            super(fs, root, names);
        }

        @Override
        public File toFile() {
            throw new UnsupportedOperationException("paths of a served tree have no java.io.File");
        }
    }
}
