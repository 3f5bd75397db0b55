package dev.kiln.agent.logs;

import java.io.IOException;

/** The bytes a reader asked for were rotated away: the log keeps only its newest bytes. */
public final class LogTruncatedException extends IOException {

    private final long firstKept;

    /**
     * @param offset    the offset asked for
     * @param firstKept the lowest offset still kept
     * @param cap       how many bytes the log keeps at most
     */
    public LogTruncatedException(long offset, long firstKept, long cap) {
        super("offset " + offset + " is no longer kept: this log keeps only its newest " + size(cap)
                + " (from offset " + firstKept + " now); read again from offset " + firstKept + " or later");
        this.firstKept = firstKept;
    }

    private static String size(long bytes) {
        if (bytes >= 1024 * 1024 && bytes % (1024 * 1024) == 0) {
            return bytes / (1024 * 1024) + " MiB";
        }
        return bytes >= 1024 && bytes % 1024 == 0 ? bytes / 1024 + " KiB" : bytes + " bytes";
    }

    /** The lowest offset still kept when the read failed. */
    public long firstKept() {
        return firstKept;
    }
}
