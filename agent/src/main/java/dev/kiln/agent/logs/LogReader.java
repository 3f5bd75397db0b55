package dev.kiln.agent.logs;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Reads one log for one reader (a log stream): the log and its stream index
 * ({@code <file>.streams}) stay open between reads. The index is a sorted run of fixed-size
 * records (offset, stream); the stream at an offset is found by binary search in the file, and the
 * switches inside a chunk are read through a small window, so a reader's memory and work per read
 * stay bounded however large the index grows. Safe to close from another thread.
 */
public final class LogReader implements LogCursor {

    static final int INDEX_RECORD = 9; // long offset + byte stream
    private static final int WINDOW_RECORDS = 512;

    private final Path file;
    private final Path indexFile;
    private final LogChannel defaultStream;
    private final ByteBuffer probe = ByteBuffer.allocate(INDEX_RECORD);
    private final ByteBuffer window = ByteBuffer.allocate(INDEX_RECORD * WINDOW_RECORDS);
    private long windowFirst; // record number of the window's first record
    private int windowRecords; // whole records in the window
    private FileChannel data;
    private FileChannel index;
    private long indexReads;
    // Where the last read stopped, and the index position there: a reader going on from there
    // needs no search.
    private long hintOffset = -1;
    private long hintNext;
    private LogChannel hintStream;
    private boolean closed;
    private byte[] reused; // readReusing's array: a whole chunk is read into it

    /**
     * @param defaultStream the stream of bytes not covered by an index (e.g. the agent's own log)
     */
    public LogReader(Path file, LogChannel defaultStream) {
        this.file = file;
        this.indexFile = LogFile.indexOf(file);
        this.defaultStream = defaultStream;
    }

    /**
     * Reads up to {@code max} bytes from {@code offset}, split where the stream changes; empty at
     * the end of what is on disk now.
     *
     * @throws NoSuchFileException when the log does not exist
     */
    @Override
    public synchronized List<Segment> read(long offset, int max) throws IOException {
        return read(offset, max, false);
    }

    /** As {@link #read}; a whole chunk of {@code max} bytes arrives in an array read into again next time. */
    @Override
    public synchronized List<Segment> readReusing(long offset, int max) throws IOException {
        return read(offset, max, true);
    }

    private List<Segment> read(long offset, int max, boolean reuse) throws IOException {
        if (closed) {
            throw new IOException("log reader of " + file + " is closed");
        }
        if (data == null) {
            data = FileChannel.open(file, StandardOpenOption.READ);
        }
        long end = Math.min(data.size(), offset + max);
        if (end <= offset) {
            return List.of();
        }
        int length = (int) (end - offset);
        byte[] bytes;
        if (reuse && length == max) {
            if (reused == null || reused.length != max) {
                reused = new byte[max];
            }
            bytes = reused;
        } else {
            bytes = new byte[length];
        }
        ByteBuffer buf = ByteBuffer.wrap(bytes);
        while (buf.hasRemaining()) {
            if (data.read(buf, offset + buf.position()) < 0) {
                break;
            }
        }
        // The writer appends an index record before the bytes it marks, so once the bytes are read,
        // every record that concerns them is in the index file.
        long records = indexRecords();
        windowRecords = 0; // the index may have grown: window contents are re-read
        long next;
        LogChannel stream;
        if (offset == hintOffset) {
            next = hintNext;
            stream = hintStream;
        } else {
            long at = floorRecord(offset, records);
            next = at + 1;
            stream = at < 0 ? defaultStream : LogChannel.of(probe.get(8));
        }
        long stop = offset + buf.position();
        List<Segment> out = new ArrayList<>(1);
        long pos = offset;
        while (pos < stop) {
            long switchAt = Long.MAX_VALUE;
            while (next < records) {
                ByteBuffer r = windowAt(next);
                long off = r.getLong();
                if (off > pos) {
                    switchAt = off;
                    break;
                }
                stream = LogChannel.of(r.get()); // in force at pos already
                next++;
            }
            long segEnd = Math.min(stop, switchAt);
            byte[] part = pos == offset && segEnd - pos == bytes.length ? bytes
                    : Arrays.copyOfRange(bytes, (int) (pos - offset), (int) (segEnd - offset));
            out.add(new Segment(pos, part, stream));
            pos = segEnd;
        }
        hintOffset = stop;
        hintNext = next;
        hintStream = stream;
        return out;
    }

    /** Reads of the index file so far (each a record or one window of records). */
    synchronized long indexReads() {
        return indexReads;
    }

    /** Whole records in the index now; 0 without one. A record being written is not counted yet. */
    private long indexRecords() throws IOException {
        if (index == null) {
            try {
                index = FileChannel.open(indexFile, StandardOpenOption.READ);
            } catch (NoSuchFileException e) {
                return 0;
            }
        }
        return index.size() / INDEX_RECORD;
    }

    /**
     * The number of the last record at or before {@code offset}, -1 if none; its record is left in
     * {@link #probe}.
     */
    private long floorRecord(long offset, long records) throws IOException {
        long lo = 0;
        long hi = records - 1;
        long found = -1;
        while (lo <= hi) {
            long mid = (lo + hi) >>> 1;
            readRecord(mid);
            if (probe.getLong(0) <= offset) {
                found = mid;
                lo = mid + 1;
            } else {
                hi = mid - 1;
            }
        }
        if (found >= 0) {
            readRecord(found);
        }
        return found;
    }

    private void readRecord(long n) throws IOException {
        probe.clear();
        readFully(probe, n * INDEX_RECORD);
    }

    /** Record {@code n}, positioned at its start, read through the window. */
    private ByteBuffer windowAt(long n) throws IOException {
        if (n < windowFirst || n >= windowFirst + windowRecords) {
            window.clear();
            readFully(window, n * INDEX_RECORD);
            window.flip();
            windowFirst = n;
            windowRecords = window.remaining() / INDEX_RECORD;
        }
        return window.duplicate().position((int) (n - windowFirst) * INDEX_RECORD);
    }

    private void readFully(ByteBuffer b, long position) throws IOException {
        indexReads++;
        while (b.hasRemaining()) {
            if (index.read(b, position + b.position()) < 0) {
                break;
            }
        }
    }

    @Override
    public synchronized void close() throws IOException {
        if (closed) {
            return;
        }
        closed = true;
        try {
            if (data != null) {
                data.close();
            }
        } finally {
            if (index != null) {
                index.close();
            }
        }
    }
}
