package dev.kiln.agent.logs;

import java.nio.file.Path;

/** A log that readers stream from: a file that may still be growing. */
public interface LogSource {

    /** The file holding the bytes. */
    Path file();

    /** The stream of bytes the file's index does not cover. */
    LogChannel defaultStream();

    /** Bytes on disk now. */
    long size();

    /** True when no more bytes will be added. */
    boolean ended();

    /**
     * Runs {@code r} once when the log holds more than {@code knownSize} bytes or has ended; gives
     * up quietly once {@code wanted} says the reader has gone.
     */
    void whenBeyond(long knownSize, Runnable r, java.util.function.BooleanSupplier wanted);

    /**
     * Runs {@code r} once when the log ends (at once if it has), where the source can tell; a
     * source that cannot (a polled file) does nothing and its readers find the end at their next
     * look.
     *
     * @return forgets {@code r}, for a reader that leaves before the end
     */
    default Runnable whenEnded(Runnable r) {
        if (ended()) {
            r.run();
        }
        return () -> { };
    }

    /** A reader of this log for one stream, from front to back (a {@link LogReader} of {@link #file()}). */
    default LogCursor cursor() {
        return new LogReader(file(), defaultStream());
    }
}
