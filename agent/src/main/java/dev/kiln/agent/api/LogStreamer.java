package dev.kiln.agent.api;

import com.google.protobuf.UnsafeByteOperations;
import dev.kiln.agent.logs.LogCursor;
import dev.kiln.agent.logs.LogSource;
import dev.kiln.agent.logs.LogTruncatedException;
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
 * follow mode it is woken when the log grows (no polling), and ends with the build's record.
 *
 * <p>Once a follower has caught up, the next bytes wait a moment (the linger) before they are
 * read, so that the lines a build prints in quick succession go out as one message: every message
 * costs both ends CPU (a frame, a TLS record, a write, a wake-up), taken from the build on a small
 * machine. The log's end is sent at once, without lingering.
 */
final class LogStreamer {

    /**
     * The most one message carries. Every message costs both ends a fixed amount of CPU (a read, a
     * frame, a parse, a hand-off between threads, a write); 256 KiB keeps that below the per-byte
     * cost and well inside gRPC's 4 MiB message limit (measured: docs/performance.md).
     */
    static final int CHUNK = 256 * 1024;
    static final int READY_THRESHOLD = 4 * CHUNK;

    /** Runs a task after a delay. */
    @FunctionalInterface
    interface Timer {
        void schedule(Runnable task, long delayMillis);
    }

    /** No timer: bytes are sent as soon as they arrive. */
    static final Timer NO_LINGER = (task, delay) -> task.run();

    private final ServerCallStreamObserver<LogChunk> out;
    private final LogSource source;
    private final LogCursor reader; // the file stays open, its index read once, for the stream's life
    private final boolean follow;
    private final Supplier<Build> endRecord;
    private final Executor executor;
    private final Timer timer;
    private final long lingerMillis;
    private volatile Runnable forgetEnd = () -> { };
    private final AtomicBoolean draining = new AtomicBoolean();
    private final AtomicBoolean done = new AtomicBoolean();
    private final AtomicBoolean rerun = new AtomicBoolean();
    private volatile boolean cancelled;
    private long offset;

    LogStreamer(ServerCallStreamObserver<LogChunk> out, LogSource source, long from, boolean follow,
                Supplier<Build> endRecord, Executor executor) {
        this(out, source, from, follow, endRecord, executor, NO_LINGER, 0);
    }

    /**
     * @param timer        schedules the linger
     * @param lingerMillis how long bytes that arrive after the follower caught up wait before they
     *                     are read, so that more join them; 0 sends each at once
     */
    LogStreamer(ServerCallStreamObserver<LogChunk> out, LogSource source, long from, boolean follow,
                Supplier<Build> endRecord, Executor executor, Timer timer, long lingerMillis) {
        this.out = out;
        this.timer = timer;
        this.lingerMillis = lingerMillis;
        this.source = source;
        this.reader = source.cursor();
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
            forgetEnd.run();
            try {
                reader.close();
            } catch (IOException e) {
                // read-only: nothing is lost
            }
            onEnd.run();
        }
    }

    void start() {
        // Ready while up to four chunks (1 MiB) wait in the transport (gRPC's default is 32 KiB, less
        // than one chunk): without it every chunk waits for an on-ready hand-off between threads.
        out.setOnReadyThreshold(READY_THRESHOLD);
        out.setOnCancelHandler(() -> {
            cancelled = true;
            ended();
        });
        out.setOnReadyHandler(this::schedule);
        schedule();
        if (follow && lingerMillis > 0) {
            // The end cuts a linger short: the last lines and the build's record go out at once.
            forgetEnd = source.whenEnded(this::schedule);
            if (endReported.get()) {
                forgetEnd.run();
            }
        }
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
                // gRPC serializes a message inside onNext, so the cursor may read the next chunk
                // into the same array.
                List<Segment> segments = reader.readReusing(offset, CHUNK);
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
                source.whenBeyond(known, lingerMillis > 0 ? this::linger : this::schedule, () -> !cancelled);
                return;
            }
        } catch (IOException | RuntimeException e) {
            if (done.compareAndSet(false, true) && !cancelled) {
                // A slow reader of a rotating log can fall behind what is kept: say where to resume.
                out.onError(e instanceof LogTruncatedException
                        ? Status.OUT_OF_RANGE.withDescription(e.getMessage()).asRuntimeException()
                        : Status.INTERNAL.withDescription("reading the log failed: " + e.getMessage()).asRuntimeException());
                ended();
            }
        }
    }

    /** The log grew after the follower caught up: lets more bytes join these before sending. */
    private void linger() {
        if (cancelled || done.get()) {
            return;
        }
        if (source.ended()) {
            schedule();
        } else {
            timer.schedule(this::schedule, lingerMillis);
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

    private static LogStream stream(dev.kiln.agent.logs.LogChannel s) {
        return switch (s) {
            case STDOUT -> LogStream.LOG_STREAM_STDOUT;
            case STDERR -> LogStream.LOG_STREAM_STDERR;
            case AGENT -> LogStream.LOG_STREAM_AGENT;
        };
    }
}
