package dev.kiln.agent.logs;

import java.io.IOException;
import java.util.List;

/** One reader's position-independent access to a log: reads bytes at byte offsets, front to back. */
public interface LogCursor extends AutoCloseable {

    /**
     * Reads up to {@code max} bytes from {@code offset}, split where the stream changes; empty at
     * the end of what is on disk now.
     *
     * @throws LogTruncatedException when the bytes at {@code offset} are no longer kept
     */
    List<Segment> read(long offset, int max) throws IOException;

    /**
     * As {@link #read}, for a caller that is done with the segments' bytes before its next call: a
     * segment's data may be an array this cursor fills again at its next read, which spares a
     * zeroed array (and its garbage) per chunk of a streamed log.
     */
    default List<Segment> readReusing(long offset, int max) throws IOException {
        return read(offset, max);
    }

    @Override
    void close() throws IOException;
}
