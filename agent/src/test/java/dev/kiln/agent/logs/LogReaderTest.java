package dev.kiln.agent.logs;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** A reader that keeps the log open and reads its stream index as it grows. */
class LogReaderTest {

    @TempDir
    Path dir;

    /** What a client would rebuild from the segments: every byte, and the stream of every byte. */
    private static void collect(List<Segment> segments, long expectedOffset, ByteArrayOutputStream bytes,
                                List<LogChannel> streams) {
        long at = expectedOffset;
        for (Segment s : segments) {
            assertEquals(at, s.offset(), "segments are contiguous");
            assertTrue(s.data().length > 0, "no empty segments");
            bytes.writeBytes(s.data());
            for (int i = 0; i < s.data().length; i++) {
                streams.add(s.stream());
            }
            at += s.data().length;
        }
    }

    @Test
    void aReaderThatReusesItsArrayGivesEveryByteAndStreamOfEachChunk() throws Exception {
        Path file = dir.resolve("build.log");
        Random random = new Random(11);
        ByteArrayOutputStream written = new ByteArrayOutputStream();
        List<LogChannel> writtenStreams = new ArrayList<>();
        try (LogFile log = LogFile.open(file)) {
            // long runs of one stream (whole chunks, read into the reused array), a few switches, a short tail
            for (int w = 0; w < 40; w++) {
                LogChannel stream = w % 9 == 8 ? LogChannel.STDERR : LogChannel.STDOUT;
                byte[] b = new byte[w == 39 ? 123 : 1000 + random.nextInt(3000)];
                random.nextBytes(b);
                log.append(stream, b, 0, b.length);
                written.writeBytes(b);
                for (int i = 0; i < b.length; i++) {
                    writtenStreams.add(stream);
                }
            }
        }
        ByteArrayOutputStream got = new ByteArrayOutputStream();
        List<LogChannel> gotStreams = new ArrayList<>();
        try (LogReader reader = new LogReader(file, LogChannel.STDOUT)) {
            long offset = 0;
            List<Segment> segments;
            while (!(segments = reader.readReusing(offset, 4096)).isEmpty()) {
                collect(segments, offset, got, gotStreams); // copies the bytes before the next read
                offset = got.size();
            }
        }
        assertArrayEquals(written.toByteArray(), got.toByteArray());
        assertEquals(writtenStreams, gotStreams);
    }

    @Test
    void followsALogThatSwitchesStreamsOftenWhileItIsWritten() throws Exception {
        Path file = dir.resolve("build.log");
        Random random = new Random(7);
        ByteArrayOutputStream written = new ByteArrayOutputStream();
        List<LogChannel> writtenStreams = new ArrayList<>();
        ByteArrayOutputStream got = new ByteArrayOutputStream();
        List<LogChannel> gotStreams = new ArrayList<>();
        try (LogFile log = LogFile.open(file); LogReader reader = new LogReader(file, LogChannel.STDOUT)) {
            for (int round = 0; round < 200; round++) {
                // a burst of short writes, alternating streams like a build's interleaved output
                for (int w = 0; w < 1 + random.nextInt(20); w++) {
                    LogChannel stream = random.nextBoolean() ? LogChannel.STDOUT : LogChannel.STDERR;
                    byte[] b = new byte[1 + random.nextInt(300)];
                    random.nextBytes(b);
                    log.append(stream, b, 0, b.length);
                    written.writeBytes(b);
                    for (int i = 0; i < b.length; i++) {
                        writtenStreams.add(stream);
                    }
                }
                // the reader catches up in chunks smaller than a burst, as a stream does
                List<Segment> segments;
                while (!(segments = reader.read(got.size(), 1000)).isEmpty()) {
                    collect(segments, got.size(), got, gotStreams);
                }
            }
        }
        assertArrayEquals(written.toByteArray(), got.toByteArray(), "byte-identical");
        assertEquals(writtenStreams, gotStreams, "every byte marked with the stream that wrote it");
    }

    @Test
    void aNewReaderFindsTheStreamByBinarySearchNotByLoadingTheIndex() throws Exception {
        // A log that switches streams on every byte: one index record per byte.
        int n = 1 << 20;
        Path file = dir.resolve("log");
        Files.write(file, new byte[n]);
        ByteBuffer records = ByteBuffer.allocate(n * LogReader.INDEX_RECORD);
        for (int i = 0; i < n; i++) {
            records.putLong(i).put((i % 2 == 0 ? LogChannel.STDOUT : LogChannel.STDERR).code());
        }
        Files.write(LogFile.indexOf(file), records.array());
        try (LogReader reader = new LogReader(file, LogChannel.STDOUT)) {
            List<Segment> tail = reader.read(n - 3, 100);
            assertEquals(List.of(LogChannel.STDERR, LogChannel.STDOUT, LogChannel.STDERR),
                    tail.stream().map(Segment::stream).toList());
            // log2(2^20) probes, the record found, one window: never the whole index.
            assertTrue(reader.indexReads() <= 20 + 2 + 1, "index reads: " + reader.indexReads());
            List<Segment> middle = reader.read(n / 2 + 1, 2);
            assertEquals(List.of(LogChannel.STDERR, LogChannel.STDOUT), middle.stream().map(Segment::stream).toList());
            assertTrue(reader.indexReads() <= 2 * (20 + 2 + 1), "index reads: " + reader.indexReads());
        }
    }

    @Test
    void readingBackBeforeDroppedIndexRecordsStillMarksStreamsRight() throws Exception {
        Path file = dir.resolve("build.log");
        try (LogFile log = LogFile.open(file)) {
            for (int i = 0; i < 10; i++) {
                LogChannel s = i % 2 == 0 ? LogChannel.STDOUT : LogChannel.STDERR;
                log.append(s, new byte[] {(byte) ('0' + i), (byte) ('0' + i)}, 0, 2);
            }
        }
        try (LogReader reader = new LogReader(file, LogChannel.STDOUT)) {
            List<Segment> tail = reader.read(16, 100);
            assertEquals(List.of(LogChannel.STDOUT, LogChannel.STDERR), tail.stream().map(Segment::stream).toList());
            List<Segment> head = reader.read(0, 5); // a resume from an earlier offset
            assertEquals(List.of(0L, 2L, 4L), head.stream().map(Segment::offset).toList());
            assertEquals(List.of(LogChannel.STDOUT, LogChannel.STDERR, LogChannel.STDOUT),
                    head.stream().map(Segment::stream).toList());
            assertEquals("001122", new String(concat(reader.read(0, 6))));
        }
    }

    @Test
    void anIndexRecordCaughtHalfWrittenIsReadWholeLater() throws Exception {
        Path file = dir.resolve("log");
        Path index = LogFile.indexOf(file);
        Files.write(file, "outerr".getBytes());
        byte[] records = ByteBuffer.allocate(18).putLong(0).put((byte) 1).putLong(3).put((byte) 2).array();
        Files.write(index, Arrays.copyOf(records, 13));
        try (LogReader reader = new LogReader(file, LogChannel.AGENT)) {
            List<Segment> first = reader.read(0, 3);
            assertEquals(1, first.size());
            assertEquals(LogChannel.STDOUT, first.get(0).stream());
            Files.write(index, Arrays.copyOfRange(records, 13, 18), StandardOpenOption.APPEND);
            List<Segment> rest = reader.read(3, 100);
            assertEquals(1, rest.size());
            assertEquals(LogChannel.STDERR, rest.get(0).stream());
            assertEquals("err", new String(rest.get(0).data()));
        }
    }

    @Test
    void aLogWithoutIndexIsAllTheDefaultStreamAndGrowsUnderTheReader() throws Exception {
        Path file = dir.resolve("agent.log");
        Files.write(file, "one\n".getBytes());
        try (LogReader reader = new LogReader(file, LogChannel.AGENT)) {
            assertEquals(LogChannel.AGENT, reader.read(0, 100).get(0).stream());
            assertTrue(reader.read(4, 100).isEmpty(), "nothing beyond the end yet");
            Files.write(file, "two\n".getBytes(), StandardOpenOption.APPEND);
            assertEquals("two\n", new String(concat(reader.read(4, 100))));
        }
    }

    @Test
    void aMissingLogFailsAndAClosedReaderRefuses() throws Exception {
        LogReader reader = new LogReader(dir.resolve("none"), LogChannel.STDOUT);
        assertThrows(NoSuchFileException.class, () -> reader.read(0, 10));
        reader.close();
        assertThrows(java.io.IOException.class, () -> reader.read(0, 10));
    }

    private static byte[] concat(List<Segment> segments) {
        ByteArrayOutputStream b = new ByteArrayOutputStream();
        segments.forEach(s -> b.writeBytes(s.data()));
        return b.toByteArray();
    }
}
