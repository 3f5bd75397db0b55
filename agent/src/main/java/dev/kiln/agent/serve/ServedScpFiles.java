package dev.kiln.agent.serve;

import org.apache.sshd.common.session.Session;
import org.apache.sshd.scp.common.ScpSourceStreamResolver;
import org.apache.sshd.scp.common.helpers.DefaultScpFileOpener;
import org.apache.sshd.scp.common.helpers.ScpTimestampCommandDetails;

import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.channels.SeekableByteChannel;
import java.nio.file.Files;
import java.nio.file.OpenOption;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFileAttributes;
import java.nio.file.attribute.PosixFilePermission;
import java.util.ArrayList;
import java.util.Collection;
import java.util.EnumSet;
import java.util.List;
import java.util.Set;

/**
 * How MINA's scp reaches the files of a {@link TreeFileSystem}: every call goes through
 * {@link TreeFileSystemProvider} (MINA's defaults do, through {@link Files}); the changes here make
 * a refusal reach the client as a clean scp error:
 * <ul>
 *   <li>a file to send is opened before its header goes out, so a file the user may not read is
 *       refused, not half-announced, and exactly the announced size is sent even if the file
 *       changes meanwhile (padded and reported when it shrinks, as OpenSSH's scp does);</li>
 *   <li>an upload is refused at once when its target is not writable;</li>
 *   <li>the provider's own errors (with the user's path and the reason) reach the client
 *       ({@link ServedScp#describe}).</li>
 * </ul>
 * One instance serves one command; {@link #closeAll()} closes what a failed transfer left open.
 */
final class ServedScpFiles extends DefaultScpFileOpener {

    private final List<SeekableByteChannel> open = new ArrayList<>();

    @Override
    public Path resolveIncomingReceiveLocation(Session session, Path path, boolean recursive, boolean shouldBeDir,
            boolean preserve) throws IOException {
        ((TreeFileSystemProvider) path.getFileSystem().provider()).changing(path, true).close();
        return super.resolveIncomingReceiveLocation(session, path, recursive, shouldBeDir, preserve);
    }

    @Override
    public ScpSourceStreamResolver createScpSourceStreamResolver(Session session, Path path) throws IOException {
        PosixFileAttributes attrs = Files.readAttributes(path, PosixFileAttributes.class);
        SeekableByteChannel channel = Files.newByteChannel(path, StandardOpenOption.READ);
        synchronized (open) {
            open.add(channel);
        }
        try {
            return new OpenedFile(path, channel, channel.size(), attrs);
        } catch (RuntimeException e) {
            channel.close();
            throw e;
        }
    }

    /** Closes the files a transfer opened and did not finish. */
    void closeAll() {
        synchronized (open) {
            for (SeekableByteChannel c : open) {
                try {
                    c.close();
                } catch (IOException ignored) {
                    // closing only
                }
            }
            open.clear();
        }
    }

    /** A file opened for sending, with the size and attributes it had when opened. */
    private static final class OpenedFile implements ScpSourceStreamResolver {
        private final Path path;
        private final SeekableByteChannel channel;
        private final long size;
        private final PosixFileAttributes attrs;
        private Exact stream;

        OpenedFile(Path path, SeekableByteChannel channel, long size, PosixFileAttributes attrs) {
            this.path = path;
            this.channel = channel;
            this.size = size;
            this.attrs = attrs;
        }

        @Override
        public String getFileName() {
            return path.getFileName().toString();
        }

        @Override
        public Path getEventListenerFilePath() {
            return path;
        }

        @Override
        public Collection<PosixFilePermission> getPermissions() {
            Set<PosixFilePermission> perms = EnumSet.noneOf(PosixFilePermission.class); // MINA copies it as an EnumSet
            perms.addAll(attrs.permissions());
            return perms;
        }

        @Override
        public ScpTimestampCommandDetails getTimestamp() {
            return new ScpTimestampCommandDetails(attrs.lastModifiedTime().toMillis(), attrs.lastAccessTime().toMillis());
        }

        @Override
        public long getSize() {
            return size;
        }

        @Override
        public InputStream resolveSourceStream(Session session, long length, Set<PosixFilePermission> permissions,
                OpenOption... options) {
            stream = new Exact(channel, size);
            return stream;
        }

        @Override
        public void closeSourceStream(Session session, long length, Set<PosixFilePermission> permissions, InputStream in)
                throws IOException {
            in.close();
            if (stream != null && stream.shortBy > 0) {
                throw new IOException(path + ": read error (the file shrank or failed while it was sent; "
                        + stream.shortBy + " bytes sent as zeros)");
            }
        }
    }

    /** Exactly {@code size} bytes of a channel: cut off when it grew, padded with zeros when it shrank. */
    private static final class Exact extends InputStream {
        private final SeekableByteChannel channel;
        private long left;
        private boolean ended;
        long shortBy;

        Exact(SeekableByteChannel channel, long size) {
            this.channel = channel;
            this.left = size;
        }

        @Override
        public int read() throws IOException {
            byte[] one = new byte[1];
            return read(one, 0, 1) < 0 ? -1 : one[0] & 0xff;
        }

        @Override
        public int read(byte[] b, int off, int len) throws IOException {
            if (left == 0) {
                return -1;
            }
            int want = (int) Math.min(len, left);
            int n = -1;
            if (!ended) {
                try {
                    n = channel.read(ByteBuffer.wrap(b, off, want));
                } catch (IOException e) {
                    n = -1; // reported once the announced bytes are out
                }
                ended = n < 0;
            }
            if (ended) {
                java.util.Arrays.fill(b, off, off + want, (byte) 0);
                shortBy += want;
                n = want;
            }
            left -= n;
            return n;
        }

        @Override
        public void close() throws IOException {
            channel.close();
        }
    }
}
