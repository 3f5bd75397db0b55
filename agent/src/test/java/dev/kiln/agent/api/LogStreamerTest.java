package dev.kiln.agent.api;

import dev.kiln.agent.logs.LogChannel;
import dev.kiln.agent.logs.LogFile;
import dev.kiln.proto.agent.v1.Build;
import dev.kiln.proto.agent.v1.LogChunk;
import dev.kiln.proto.agent.v1.LogStream;
import io.grpc.stub.ServerCallStreamObserver;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.Executor;
import java.util.function.Supplier;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Flow control, tested against a stand-in for gRPC's server stream: the one thing a real
 * transport cannot be made to do on cue is to report "not ready" at an exact message, which is
 * what proves the streamer stops reading from disk while the client is slow.
 */
class LogStreamerTest {

    @TempDir
    Path dir;

    /** A server stream whose readiness the test sets; runs handlers inline. */
    static final class Transport extends ServerCallStreamObserver<LogChunk> {
        final List<LogChunk> sent = new ArrayList<>();
        int budget;
        boolean completed;
        Runnable onReady;

        @Override
        public boolean isReady() {
            return budget > 0;
        }

        @Override
        public void onNext(LogChunk value) {
            if (budget <= 0) {
                throw new AssertionError("sent while the transport was not ready");
            }
            budget--;
            sent.add(serialized(value));
        }

        void grant(int messages) {
            budget += messages;
            onReady.run();
        }

        @Override public void setOnReadyHandler(Runnable r) { onReady = r; }
        @Override public void onError(Throwable t) { throw new AssertionError(t); }
        @Override public void onCompleted() { completed = true; }
        @Override public boolean isCancelled() { return false; }
        Runnable cancel;

        @Override public void setOnCancelHandler(Runnable r) { cancel = r; }
        @Override public void setCompression(String c) { }
        @Override public void disableAutoInboundFlowControl() { }
        @Override public void request(int n) { }
        @Override public void setMessageCompression(boolean e) { }
    }

    static final Executor INLINE = Runnable::run;

    /**
     * The message as the client gets it: gRPC's transport serializes a message inside onNext, and the
     * streamer reads its next chunk into the same array once onNext returns.
     */
    static LogChunk serialized(LogChunk value) {
        try {
            return LogChunk.parseFrom(value.toByteArray());
        } catch (com.google.protobuf.InvalidProtocolBufferException e) {
            throw new AssertionError(e);
        }
    }

    @Test
    void readsOnlyAsMuchAsTheClientAcceptsAndLosesNothing() throws Exception {
        byte[] content = new byte[LogStreamer.CHUNK * 20 + 123];
        new Random(42).nextBytes(content);
        LogFile log = LogFile.open(dir.resolve("log"));
        log.append(LogChannel.STDOUT, content, 0, content.length);
        log.close();

        Transport t = new Transport();
        new LogStreamer(t, log, 0, true, () -> Build.newBuilder().setId("b-1").build(), INLINE).start();
        assertEquals(0, t.sent.size(), "nothing is read or sent before the client is ready");
        t.grant(3);
        assertEquals(3, t.sent.size(), "a slow client gets three chunks and the streamer waits");
        t.grant(100);
        assertTrue(t.completed);

        ByteArrayOutputStream got = new ByteArrayOutputStream();
        long expectedOffset = 0;
        for (LogChunk c : t.sent.subList(0, t.sent.size() - 1)) {
            assertEquals(expectedOffset, c.getOffset());
            assertTrue(c.getData().size() <= LogStreamer.CHUNK, "bounded chunks");
            got.write(c.getData().toByteArray());
            expectedOffset += c.getData().size();
        }
        assertArrayEquals(content, got.toByteArray());
        LogChunk last = t.sent.get(t.sent.size() - 1);
        assertTrue(last.getEndOfLog());
        assertEquals("b-1", last.getBuild().getId());
    }

    @Test
    void followsALiveLogAndMarksStreams() throws Exception {
        LogFile log = LogFile.open(dir.resolve("live"));
        Transport t = new Transport();
        t.budget = 1000;
        new LogStreamer(t, log, 0, true, () -> Build.newBuilder().setId("b-2").build(), INLINE).start();
        assertEquals(0, t.sent.size());
        log.append(LogChannel.STDOUT, "hello ".getBytes(), 0, 6);
        log.append(LogChannel.STDERR, "oops\n".getBytes(), 0, 5);
        assertEquals(2, t.sent.size(), "new bytes are pushed as they arrive");
        assertEquals(LogStream.LOG_STREAM_STDOUT, t.sent.get(0).getStream());
        assertEquals(LogStream.LOG_STREAM_STDERR, t.sent.get(1).getStream());
        assertEquals(6, t.sent.get(1).getOffset());
        log.close();
        assertTrue(t.completed, "the stream ends when the build's log closes");
        assertTrue(t.sent.get(2).getEndOfLog());
    }

    /** A timer the test fires by hand. */
    static final class HandTimer implements LogStreamer.Timer {
        final List<Runnable> due = new ArrayList<>();
        final List<Long> delays = new ArrayList<>();

        @Override
        public void schedule(Runnable task, long delayMillis) {
            due.add(task);
            delays.add(delayMillis);
        }

        void fire() {
            List<Runnable> now = new ArrayList<>(due);
            due.clear();
            now.forEach(Runnable::run);
        }
    }

    /** A follower of {@code log} from its start, lingering 40 ms on {@code timer}, inline. */
    private static LogStreamer lingering(Transport t, LogFile log, Supplier<Build> end, HandTimer timer) {
        return new LogStreamer(t, log, 0, true, end, INLINE, timer, 40);
    }

    @Test
    void linesPrintedWithinTheLingerGoOutAsOneMessage() throws Exception {
        LogFile log = LogFile.open(dir.resolve("lingered"));
        Transport t = new Transport();
        t.budget = 1000;
        HandTimer timer = new HandTimer();
        lingering(t, log, () -> Build.newBuilder().setId("b-3").build(), timer).start();
        log.append(LogChannel.STDOUT, "[1/3] flac\n".getBytes(), 0, 11);
        log.append(LogChannel.STDOUT, "[2/3] mp3\n".getBytes(), 0, 10);
        assertEquals(0, t.sent.size(), "the first line waits for the linger, and the second joins it");
        assertEquals(List.of(40L), timer.delays, "one linger, however many lines arrive in it");
        timer.fire();
        assertEquals(1, t.sent.size());
        assertEquals("[1/3] flac\n[2/3] mp3\n", t.sent.get(0).getData().toStringUtf8());

        log.append(LogChannel.STDOUT, "[3/3] opus\n".getBytes(), 0, 11);
        assertEquals(1, t.sent.size(), "caught up again: the next line lingers too");
        log.close();
        assertEquals(3, t.sent.size(), "the end cuts the linger short: last line and record at once");
        assertEquals("[3/3] opus\n", t.sent.get(1).getData().toStringUtf8());
        assertEquals(21, t.sent.get(1).getOffset());
        assertTrue(t.sent.get(2).getEndOfLog());
        assertEquals("b-3", t.sent.get(2).getBuild().getId());
        assertTrue(t.completed);
        timer.fire();
        assertEquals(3, t.sent.size(), "the linger's timer firing after the end sends nothing more");
    }

    @Test
    void aFollowerThatLeavesIsSentNothingMore() throws Exception {
        LogFile log = LogFile.open(dir.resolve("left"));
        Transport t = new Transport();
        t.budget = 1000;
        HandTimer timer = new HandTimer();
        boolean[] ended = {false};
        lingering(t, log, () -> null, timer).onEnd(() -> ended[0] = true).start();
        t.cancel.run();
        assertTrue(ended[0]);
        log.append(LogChannel.STDOUT, "late\n".getBytes(), 0, 5);
        log.close();
        timer.fire();
        assertEquals(0, t.sent.size(), "nothing is sent to a follower that has gone");
        assertTrue(!t.completed);
    }
}
