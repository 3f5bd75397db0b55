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

    @Override
    void close() throws IOException;
}
