package dev.kiln.agent.logs;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;

/**
 * A log on disk: the bytes, exactly as produced, in one file, and beside it a small index
 * ({@code <file>.streams}) of where the stream changes (stdout/stderr), so readers can mark
 * every chunk with its stream. Bytes reach the file before anyone can read them: streaming reads
 * the file, never a memory buffer.
 */
public final class LogFile implements AutoCloseable, LogSource {

    private static final int INDEX_RECORD = LogReader.INDEX_RECORD;

    private final Path file;
    private final FileChannel data;
    private final FileChannel index;
    private final List<Runnable> waiters = new ArrayList<>();
    private final List<Runnable> endWaiters = new ArrayList<>();
    private long size;
    private long indexSize;
    private LogChannel lastStream;
    private boolean closed;

    private LogFile(Path file) throws IOException {
        this.file = file;
        Files.createDirectories(file.toAbsolutePath().getParent());
        this.data = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.WRITE, StandardOpenOption.APPEND);
        this.index = FileChannel.open(indexOf(file), StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                StandardOpenOption.APPEND);
        this.size = data.size();
        // A record torn by a crash would shift every later one: the index holds whole records only.
        long whole = index.size() / INDEX_RECORD * INDEX_RECORD;
        if (whole != index.size()) {
            index.truncate(whole);
        }
        this.indexSize = whole;
        this.lastStream = whole == 0 ? null : lastRecordStream(indexOf(file), whole - INDEX_RECORD);
    }

    /** Opens (creating or appending to) a log for writing. */
    public static LogFile open(Path file) throws IOException {
        return new LogFile(file);
    }

    public Path path() {
        return file;
    }

    /** As a {@link LogSource}: the file being written. */
    @Override
    public Path file() {
        return file;
    }

    /** Build logs index every byte; the default only matters for a log without an index. */
    @Override
    public LogChannel defaultStream() {
        return LogChannel.STDOUT;
    }

    /** Ended once closed: a closed log never grows again. */
    @Override
    public boolean ended() {
        return isClosed();
    }

    /** Waiters are dropped at the next growth or close, so an abandoned reader costs nothing more. */
    @Override
    public void whenBeyond(long knownSize, Runnable r, java.util.function.BooleanSupplier wanted) {
        whenBeyond(knownSize, r);
    }

    /** Appends bytes from one stream. */
    public synchronized void append(LogChannel stream, byte[] bytes, int off, int len) throws IOException {
        if (closed) {
            throw new IOException("log " + file + " is closed");
        }
        if (len == 0) {
            return;
        }
        if (stream != lastStream) {
            ByteBuffer rec = ByteBuffer.allocate(INDEX_RECORD).putLong(size).put(stream.code()).flip();
            while (rec.hasRemaining()) {
                index.write(rec);
            }
            indexSize += INDEX_RECORD;
            lastStream = stream;
        }
        ByteBuffer buf = ByteBuffer.wrap(bytes, off, len);
        while (buf.hasRemaining()) {
            data.write(buf);
        }
        size += len;
        wake();
    }

    /** Bytes written so far. */
    @Override
    public synchronized long size() {
        return size;
    }

    /** Bytes on disk now: the log and its stream index. */
    public synchronized long diskSize() {
        return size + indexSize;
    }

    /** Bytes on disk after appending {@code len} bytes from {@code stream} (with its index record, if any). */
    public synchronized long diskSizeAfter(LogChannel stream, int len) {
        return size + indexSize + len + (stream != lastStream ? INDEX_RECORD : 0);
    }

    /** Forces the bytes to stable storage. */
    public synchronized void sync() throws IOException {
        if (!closed) {
            data.force(true);
            index.force(true);
        }
    }

    /**
     * Runs {@code r} once, as soon as the log holds more than {@code knownSize} bytes or is closed
     * (at once if that is already so). Followers wait on it, so none polls.
     */
    public void whenBeyond(long knownSize, Runnable r) {
        boolean now;
        synchronized (this) {
            now = size > knownSize || closed;
            if (!now) {
                waiters.add(r);
            }
        }
        if (now) {
            r.run();
        }
    }

    /** Runs {@code r} once when the log is closed, at once if it is already. */
    @Override
    public Runnable whenEnded(Runnable r) {
        synchronized (this) {
            if (!closed) {
                endWaiters.add(r);
                return () -> {
                    synchronized (this) {
                        endWaiters.remove(r);
                    }
                };
            }
        }
        r.run();
        return () -> { };
    }

    public synchronized boolean isClosed() {
        return closed;
    }

    /** Syncs and closes; wakes every follower. */
    @Override
    public void close() throws IOException {
        synchronized (this) {
            if (closed) {
                return;
            }
            data.force(true);
            index.force(true);
            data.close();
            index.close();
            closed = true;
        }
        wake();
        runAndClear(endWaiters);
    }

    private void wake() {
        runAndClear(waiters);
    }

    /** Runs what is in {@code list} now, outside the lock: a waiter may register again. */
    private void runAndClear(List<Runnable> list) {
        List<Runnable> toRun;
        synchronized (this) {
            toRun = new ArrayList<>(list);
            list.clear();
        }
        toRun.forEach(Runnable::run);
    }

    /** The index file of a log. */
    public static Path indexOf(Path file) {
        return file.resolveSibling(file.getFileName() + ".streams");
    }

    /**
     * Reads up to {@code max} bytes from {@code offset}, split where the stream changes. Opens the
     * log for one read; a reader that goes on reading uses a {@link LogReader}.
     *
     * @param defaultStream the stream of bytes not covered by an index (e.g. the agent's own log)
     */
    public static List<Segment> read(Path file, long offset, int max, LogChannel defaultStream) throws IOException {
        try (LogReader reader = new LogReader(file, defaultStream)) {
            return reader.read(offset, max);
        }
    }

    private static LogChannel lastRecordStream(Path idx, long position) throws IOException {
        try (FileChannel ch = FileChannel.open(idx, StandardOpenOption.READ)) {
            ByteBuffer b = ByteBuffer.allocate(1);
            ch.read(b, position + Long.BYTES);
            return LogChannel.of(b.get(0));
        }
    }
}
