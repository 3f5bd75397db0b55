package dev.kiln.agent.logs;

/**
 * Bytes of a log at a byte offset, all from one stream.
 *
 * @param offset offset of data[0] in the log
 * @param data   the bytes
 * @param stream where they came from
 */
public record Segment(long offset, byte[] data, LogChannel stream) {
}
