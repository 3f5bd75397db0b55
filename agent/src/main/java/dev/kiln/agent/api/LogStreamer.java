package dev.kiln.agent.api;

import com.google.protobuf.UnsafeByteOperations;
import dev.kiln.agent.logs.LogReader;
import dev.kiln.agent.logs.LogSource;
import dev.kiln.agent.logs.Segment;
import dev.kiln.proto.agent.v1.Build;
import dev.kiln.proto.agent.v1.LogChunk;
import dev.kiln.proto.agent.v1.LogStream;
import io.grpc.Status;
import io.grpc.stub.ServerCallStreamObserver;

import java.io.IOException;
import java.util.List;
import java.util.concurrent.Executor;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.Supplier;

/**
 * Streams a log from a byte offset under gRPC flow control: it reads the next chunk from disk only
 * while the transport is ready for it, so memory stays bounded however slow the client is. In
 * follow mode it waits for the log to grow instead of polling, and ends with the build's record.
 */
final class LogStreamer {

    static final int CHUNK = 64 * 1024;
    static final int READY_THRESHOLD = 4 * CHUNK;

    private final ServerCallStreamObserver<LogChunk> out;
    private final LogSource source;
    private final LogReader reader; // the file stays open, its index read once, for the stream's life
    private final boolean follow;
    private final Supplier<Build> endRecord;
    private final Executor executor;
    private final AtomicBoolean draining = new AtomicBoolean();
    private final AtomicBoolean done = new AtomicBoolean();
    private final AtomicBoolean rerun = new AtomicBoolean();
    private volatile boolean cancelled;
    private long offset;

    LogStreamer(ServerCallStreamObserver<LogChunk> out, LogSource source, long from, boolean follow,
                Supplier<Build> endRecord, Executor executor) {
        this.out = out;
        this.source = source;
        this.reader = new LogReader(source.file(), source.defaultStream());
        this.offset = from;
        this.follow = follow;
        this.endRecord = endRecord;
        this.executor = executor;
    }

    private Runnable onEnd = () -> { };

    /** Runs {@code r} once when the stream ends, however it ends. */
    LogStreamer onEnd(Runnable r) {
        this.onEnd = r;
        return this;
    }

    private final AtomicBoolean endReported = new AtomicBoolean();

    private void ended() {
        if (endReported.compareAndSet(false, true)) {
            try {
                reader.close();
            } catch (IOException e) {
                // read-only: nothing is lost
            }
            onEnd.run();
        }
    }

    void start() {
        // Ready while up to four chunks wait in the transport (gRPC's default is 32 KiB, less than
        // one chunk): without it every chunk waits for an on-ready hand-off between threads.
        out.setOnReadyThreshold(READY_THRESHOLD);
        out.setOnCancelHandler(() -> {
            cancelled = true;
            ended();
        });
        out.setOnReadyHandler(this::schedule);
        schedule();
    }

    private void schedule() {
        rerun.set(true);
        if (!cancelled && !done.get()) {
            executor.execute(this::drain);
        }
    }

    /**
     * Sends as much as the transport accepts. One drain runs at a time; a wake-up that arrives
     * while one runs makes it go round again, so none is lost.
     */
    private void drain() {
        if (!draining.compareAndSet(false, true)) {
            return;
        }
        try {
            do {
                rerun.set(false);
                drainOnce();
            } while (rerun.get() && !done.get() && !cancelled);
        } finally {
            draining.set(false);
        }
        if (rerun.get() && !done.get() && !cancelled) {
            executor.execute(this::drain);
        }
    }

    private void drainOnce() {
        try {
            while (!cancelled && !done.get() && out.isReady()) {
                boolean ended = source.ended(); // read before the size: no byte can slip in between
                List<Segment> segments = reader.read(offset, CHUNK);
                if (!segments.isEmpty()) {
                    for (Segment s : segments) {
                        out.onNext(LogChunk.newBuilder().setOffset(s.offset()).setData(UnsafeByteOperations.unsafeWrap(s.data()))
                                .setStream(stream(s.stream())).build());
                        offset = s.offset() + s.data().length;
                    }
                    continue;
                }
                if (ended || !follow) {
                    finish(ended);
                    return;
                }
                long known = offset;
                source.whenBeyond(known, this::schedule, () -> !cancelled);
                return;
            }
        } catch (IOException | RuntimeException e) {
            if (done.compareAndSet(false, true) && !cancelled) {
                out.onError(Status.INTERNAL.withDescription("reading the log failed: " + e.getMessage()).asRuntimeException());
                ended();
            }
        }
    }

    private void finish(boolean ended) {
        if (!done.compareAndSet(false, true)) {
            return;
        }
        if (follow && ended) {
            Build build = endRecord.get();
            LogChunk.Builder last = LogChunk.newBuilder().setOffset(offset).setEndOfLog(true);
            if (build != null) {
                last.setBuild(build);
            }
            out.onNext(last.build());
        }
        out.onCompleted();
        ended();
    }

    private static LogStream stream(dev.kiln.agent.logs.OutputStream s) {
        return switch (s) {
            case STDOUT -> LogStream.LOG_STREAM_STDOUT;
            case STDERR -> LogStream.LOG_STREAM_STDERR;
            case AGENT -> LogStream.LOG_STREAM_AGENT;
        };
    }
}
