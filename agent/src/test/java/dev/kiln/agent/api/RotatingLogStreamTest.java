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
        @Override public void onNext(LogChunk value) { budget--; sent.add(value); }
        @Override public void setOnReadyHandler(Runnable r) { onReady = r; }
        @Override public void onError(Throwable t) { error = t; }
        @Override public void onCompleted() { completed = true; }
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
}
