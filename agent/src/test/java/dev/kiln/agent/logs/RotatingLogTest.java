package dev.kiln.agent.logs;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.atomic.AtomicBoolean;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class RotatingLogTest {

    /** Segments of at most 29 bytes with their index: two 7-byte lines of one stream (9 + 14). */
    private static final long CAP = 58;

    @TempDir
    Path dir;

    static long onDisk(Path dir) throws Exception {
        try (var files = Files.list(dir)) {
            return files.mapToLong(f -> f.toFile().length()).sum();
        }
    }

    static void write(RotatingLog log, LogChannel stream, String text) throws Exception {
        byte[] b = text.getBytes(StandardCharsets.UTF_8);
        log.append(stream, b, 0, b.length);
    }

    static String readAll(LogCursor cursor, long from) throws Exception {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        long offset = from;
        while (true) {
            List<Segment> segments = cursor.read(offset, 7);
            if (segments.isEmpty()) {
                return out.toString(StandardCharsets.UTF_8);
            }
            for (Segment s : segments) {
                assertEquals(offset, s.offset());
                out.write(s.data());
                offset += s.data().length;
            }
        }
    }

    @Test
    void offsetsRunOnAcrossSegmentsAndOnlyTheNewestBytesAreKept() throws Exception {
        RotatingLog log = RotatingLog.open(dir.resolve("web"), CAP);
        StringBuilder all = new StringBuilder();
        for (int i = 0; i < 10; i++) {
            String line = "line " + i + "\n"; // 7 bytes
            write(log, i % 2 == 0 ? LogChannel.STDOUT : LogChannel.STDERR, line);
            all.append(line);
        }
        assertEquals(70, log.size());
        // Segments of at most 29 bytes (half the cap) with their index, the newest two kept.
        long first = log.firstOffset();
        assertTrue(first > 0 && 70 - first >= 14, "first kept offset " + first);
        assertTrue(onDisk(dir.resolve("web")) <= CAP, "within the cap: " + onDisk(dir.resolve("web")));
        try (var files = Files.list(dir.resolve("web"))) {
            assertEquals(4, files.count(), "two segments and their stream indexes");
        }
        try (LogCursor cursor = log.cursor()) {
            assertEquals(all.substring((int) first), readAll(cursor, first));
            // Streams are kept per byte across segments.
            List<Segment> last = cursor.read(63, 100);
            assertEquals(List.of(LogChannel.STDERR), last.stream().map(Segment::stream).toList());
            LogTruncatedException gone = assertThrows(LogTruncatedException.class, () -> cursor.read(0, 10));
            assertEquals(first, gone.firstKept());
            assertEquals("offset 0 is no longer kept: this log keeps only its newest 58 bytes (from offset " + first
                    + " now); read again from offset " + first + " or later", gone.getMessage());
        }
    }

    @Test
    void reopeningAppendsAtTheSameOffsets() throws Exception {
        RotatingLog log = RotatingLog.open(dir.resolve("web"), CAP);
        for (int i = 0; i < 5; i++) {
            write(log, LogChannel.STDOUT, "line " + i + "\n");
        }
        log.close();
        RotatingLog again = RotatingLog.open(dir.resolve("web"), CAP);
        assertEquals(35, again.size());
        write(again, LogChannel.STDOUT, "after\n");
        assertEquals(41, again.size());
        try (LogCursor cursor = again.cursor()) {
            assertEquals("line 4\nafter\n", readAll(cursor, 28));
        }
    }

    @Test
    void aFollowerIsWokenByARotationAndByTheEnd() throws Exception {
        RotatingLog log = RotatingLog.open(dir.resolve("web"), CAP);
        write(log, LogChannel.STDOUT, "0123456789abcdef\n"); // 17 bytes
        AtomicBoolean woken = new AtomicBoolean();
        log.whenBeyond(17, () -> woken.set(true), () -> true);
        assertFalse(woken.get());
        write(log, LogChannel.STDOUT, "next segment\n"); // does not fit: a new segment starts
        assertTrue(woken.get(), "the rotation wakes a follower of the old segment");

        AtomicBoolean ended = new AtomicBoolean();
        log.whenEnded(() -> ended.set(true));
        AtomicBoolean wokenAtEnd = new AtomicBoolean();
        log.whenBeyond(log.size(), () -> wokenAtEnd.set(true), () -> true);
        assertFalse(log.ended());
        log.end();
        assertTrue(log.ended());
        assertTrue(ended.get());
        assertTrue(wokenAtEnd.get());
    }

    @Test
    void bytesLostFromTheEndOfASegmentAreSkippedNotWaitedFor() throws Exception {
        RotatingLog log = RotatingLog.open(dir.resolve("web"), CAP);
        for (int i = 0; i < 5; i++) {
            write(log, LogChannel.STDOUT, "line " + i + "\n"); // segments at 14 and 28 are kept
        }
        log.close();
        // A crash lost the last line of the middle segment (14..28).
        try (var ch = java.nio.channels.FileChannel.open(dir.resolve("web/log.14"), java.nio.file.StandardOpenOption.WRITE)) {
            ch.truncate(7);
        }
        RotatingLog again = RotatingLog.open(dir.resolve("web"), CAP);
        try (LogCursor cursor = again.cursor()) {
            List<Segment> next = cursor.read(21, 100);
            assertEquals(28, next.get(0).offset(), "on from the next segment");
            assertEquals("line 4\n", new String(next.get(0).data(), StandardCharsets.UTF_8));
        }
    }

    @Test
    void outputThatSwitchesStreamsOnEveryByteStaysWithinTheCap() throws Exception {
        long cap = 64 * 1024;
        RotatingLog log = RotatingLog.open(dir.resolve("web"), cap);
        byte[] one = {'x'};
        for (int i = 0; i < 200_000; i++) {
            log.append(i % 2 == 0 ? LogChannel.STDOUT : LogChannel.STDERR, one, 0, 1);
            if (i % 10_000 == 0) {
                assertTrue(onDisk(dir.resolve("web")) <= cap, "within the cap: " + onDisk(dir.resolve("web")));
            }
        }
        assertTrue(onDisk(dir.resolve("web")) <= cap, "the stream index counts toward the cap: "
                + onDisk(dir.resolve("web")) + " bytes on disk");
        try (LogCursor cursor = log.cursor()) {
            long first = log.firstOffset();
            List<Segment> s = cursor.read(first, 4);
            assertEquals(4, s.size(), "still one stream per byte");
            assertEquals(first % 2 == 0 ? LogChannel.STDOUT : LogChannel.STDERR, s.get(0).stream());
        }
        log.close();
    }
}
