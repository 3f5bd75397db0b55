package dev.kiln.agent.logs;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * Reads one log from front to back for one reader (a log stream): the file stays open between
 * reads, and the stream index ({@code <file>.streams}) is read incrementally, only the records
 * appended since the last read. Reading the whole index again for every chunk made each chunk of a
 * log that switches streams often cost more as the log grew.
 *
 * <p>Index records already behind the reader are dropped (all but the one that gives the stream at
 * the reader's position), so memory stays bounded however long the log; a read that goes back
 * before them reads the index again from its start. Safe to close from another thread.
 */
public final class LogReader implements LogCursor {

    static final int INDEX_RECORD = 9; // long offset + byte stream

    private final Path file;
    private final Path indexFile;
    private final LogChannel defaultStream;
    private final TreeMap<Long, LogChannel> switches = new TreeMap<>();
    private final ByteBuffer record = ByteBuffer.allocate(INDEX_RECORD * 512);
    private FileChannel data;
    private FileChannel index;
    private long indexPos; // bytes of the index consumed: always whole records
    private long forgottenBelow; // index records for offsets below this were dropped
    private boolean closed;

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
        byte[] bytes = new byte[(int) (end - offset)];
        ByteBuffer buf = ByteBuffer.wrap(bytes);
        while (buf.hasRemaining()) {
            if (data.read(buf, offset + buf.position()) < 0) {
                break;
            }
        }
        // The writer appends an index record before the bytes it marks, so once the bytes are read,
        // every record that concerns them is in the index file.
        updateIndex(offset);
        long stop = offset + buf.position();
        List<Segment> out = new ArrayList<>(1);
        long pos = offset;
        while (pos < stop) {
            Map.Entry<Long, LogChannel> at = switches.floorEntry(pos);
            LogChannel stream = at == null ? defaultStream : at.getValue();
            Long next = switches.higherKey(pos);
            long segEnd = next == null ? stop : Math.min(stop, next);
            byte[] part = pos == offset && segEnd - pos == bytes.length ? bytes
                    : Arrays.copyOfRange(bytes, (int) (pos - offset), (int) (segEnd - offset));
            out.add(new Segment(pos, part, stream));
            pos = segEnd;
        }
        forget(stop);
        return out;
    }

    /** Index records held now (bounded: those ahead of the reader, and one behind). */
    synchronized int heldIndexRecords() {
        return switches.size();
    }

    private void updateIndex(long offset) throws IOException {
        if (offset < forgottenBelow) { // gone back before what was dropped: start the index again
            switches.clear();
            indexPos = 0;
            forgottenBelow = 0;
        }
        if (index == null) {
            if (!Files.exists(indexFile)) {
                return;
            }
            try {
                index = FileChannel.open(indexFile, StandardOpenOption.READ);
            } catch (NoSuchFileException e) {
                return;
            }
        }
        while (true) {
            record.clear();
            int n = index.read(record, indexPos);
            if (n <= 0) {
                return;
            }
            record.flip();
            while (record.remaining() >= INDEX_RECORD) {
                long off = record.getLong();
                switches.put(off, LogChannel.of(record.get()));
                indexPos += INDEX_RECORD;
            }
            if (record.hasRemaining()) {
                return; // a record being written: read it whole next time
            }
        }
    }

    /** Drops the records no read from {@code pos} on needs: all before the one in force at pos. */
    private void forget(long pos) {
        Long floor = switches.floorKey(pos);
        if (floor != null && switches.firstKey() < floor) {
            switches.headMap(floor, false).clear();
            forgottenBelow = floor;
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
