package dev.kiln.agent.api;

import dev.kiln.agent.logs.LogChannel;
import dev.kiln.agent.logs.RotatingLog;
import dev.kiln.proto.agent.v1.LogChunk;
import io.grpc.Status;
import io.grpc.stub.ServerCallStreamObserver;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A service's log streamed as StreamLogs does ("service:NAME"): from a byte offset, followed across
 * rotations until the service will not run again. The transport is a stand-in (see
 * {@link LogStreamerTest}) that records an error instead of failing, so a reader that fell behind
 * the rotation can be seen to get OUT_OF_RANGE.
 */
class RotatingLogStreamTest {

    @TempDir
    Path dir;

    static final class Transport extends ServerCallStreamObserver<LogChunk> {
        final List<LogChunk> sent = new ArrayList<>();
        int budget = 1000;
        boolean completed;
        Throwable error;
        Runnable onReady;

        @Override public boolean isReady() { return budget > 0; }
        @Override public synchronized void onNext(LogChunk value) { budget--; sent.add(LogStreamerTest.serialized(value)); }
        @Override public void setOnReadyHandler(Runnable r) { onReady = r; }
        @Override public synchronized void onError(Throwable t) { error = t; notifyAll(); }
        @Override public synchronized void onCompleted() { completed = true; notifyAll(); }
        @Override public boolean isCancelled() { return false; }
        @Override public void setOnCancelHandler(Runnable r) { }
        @Override public void setCompression(String c) { }
        @Override public void disableAutoInboundFlowControl() { }
        @Override public void request(int n) { }
        @Override public void setMessageCompression(boolean e) { }

        String data() {
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            sent.forEach(c -> out.writeBytes(c.getData().toByteArray()));
            return out.toString(StandardCharsets.UTF_8);
        }
    }

    static void write(RotatingLog log, String text) throws Exception {
        byte[] b = text.getBytes(StandardCharsets.UTF_8);
        log.append(LogChannel.STDOUT, b, 0, b.length);
    }

    @Test
    void aFollowerFromAnOffsetGetsEveryByteAcrossRotationsUntilTheEnd() throws Exception {
        RotatingLog log = RotatingLog.open(dir.resolve("web"), 64);
        write(log, "serving on 8000\n"); // 16 bytes
        Transport t = new Transport();
        new LogStreamer(t, log, 11, true, () -> null, Runnable::run).start();
        assertEquals("8000\n", t.data());
        assertEquals(11, t.sent.get(0).getOffset());
        StringBuilder more = new StringBuilder();
        for (int i = 0; i < 10; i++) {
            String line = "GET /page/" + i + "\n"; // 12 bytes: a new segment every few lines
            write(log, line);
            more.append(line);
        }
        assertTrue(log.firstOffset() > 0, "the log has rotated");
        assertEquals("8000\n" + more, t.data(), "nothing lost, nothing twice");
        long offset = 11;
        for (LogChunk c : t.sent) {
            assertEquals(offset, c.getOffset());
            offset += c.getData().size();
        }
        assertFalse(t.completed, "the stream stays open while the service may run again");
        log.end();
        assertTrue(t.completed);
        assertTrue(t.sent.get(t.sent.size() - 1).getEndOfLog());
    }

    @Test
    void aReaderLeftBehindByTheRotationIsToldWhereToResume() throws Exception {
        RotatingLog log = RotatingLog.open(dir.resolve("web"), 64);
        write(log, "first line that will be rotated away\n");
        Transport t = new Transport();
        t.budget = 0; // a client that does not read for a while
        new LogStreamer(t, log, 0, true, () -> null, Runnable::run).start();
        for (int i = 0; i < 10; i++) {
            write(log, "GET /page/" + i + "\n");
        }
        t.budget = 1000;
        t.onReady.run();
        assertEquals(Status.Code.OUT_OF_RANGE, Status.fromThrowable(t.error).getCode());
        assertEquals("offset 0 is no longer kept: this log keeps only its newest 64 bytes (from offset "
                + log.firstOffset() + " now); read again from offset " + log.firstOffset() + " or later",
                Status.fromThrowable(t.error).getDescription());
    }

    @Test
    void aFollowerReadingWhileTheLogRotatesGetsOnlyTheBytesWrittenAtTheirOffsets() throws Exception {
        RotatingLog log = RotatingLog.open(dir.resolve("web"), 4096);
        Transport t = new Transport();
        t.budget = Integer.MAX_VALUE;
        java.util.concurrent.ExecutorService pool = java.util.concurrent.Executors.newFixedThreadPool(2);
        try {
            new LogStreamer(t, log, 0, true, () -> null, pool).start();
            // Byte n of the log is n % 251: any byte read from the wrong segment or offset shows.
            byte[] chunk = new byte[97];
            long written = 0;
            for (int i = 0; i < 2000; i++) {
                for (int j = 0; j < chunk.length; j++) {
                    chunk[j] = (byte) ((written + j) % 251);
                }
                log.append(i % 3 == 0 ? LogChannel.STDERR : LogChannel.STDOUT, chunk, 0, chunk.length);
                written += chunk.length;
            }
            log.end();
            synchronized (t) {
                long giveUp = System.nanoTime() + java.util.concurrent.TimeUnit.SECONDS.toNanos(60);
                while (!t.completed && t.error == null && System.nanoTime() < giveUp) {
                    t.wait(1000);
                }
                assertTrue(t.completed || t.error != null, "the stream ended");
                if (t.error != null) {
                    assertEquals(Status.Code.OUT_OF_RANGE, Status.fromThrowable(t.error).getCode(), t.error.toString());
                }
                long expected = 0;
                for (LogChunk c : t.sent) {
                    if (c.getEndOfLog()) {
                        assertEquals(written, c.getOffset(), "the end comes after every byte");
                        continue;
                    }
                    assertEquals(expected, c.getOffset(), "chunks follow each other from offset 0");
                    byte[] data = c.getData().toByteArray();
                    for (int k = 0; k < data.length; k++) {
                        assertEquals((byte) ((c.getOffset() + k) % 251), data[k], "byte at offset " + (c.getOffset() + k));
                    }
                    expected = c.getOffset() + data.length;
                }
            }
        } finally {
            pool.shutdownNow();
        }
    }
}
