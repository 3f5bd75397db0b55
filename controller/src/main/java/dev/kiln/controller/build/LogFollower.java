package dev.kiln.controller.build;

import dev.kiln.controller.ExitCodes;
import dev.kiln.controller.KilnException;
import dev.kiln.controller.client.AgentClient;
import dev.kiln.controller.client.GrpcErrors;
import dev.kiln.proto.agent.v1.AgentGrpc;
import dev.kiln.proto.agent.v1.Build;
import dev.kiln.proto.agent.v1.LogChunk;
import dev.kiln.proto.agent.v1.StreamLogsRequest;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.stub.ClientCalls;

import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.Iterator;
import java.util.function.Consumer;
import java.util.function.Supplier;

/**
 * Copies a log from an agent to an output, byte for byte, from a byte offset. When following, a
 * dropped connection or an agent restart does not lose or repeat a byte: it reconnects (within a
 * time budget) and resumes from the number of bytes it has already written.
 */
public final class LogFollower {

    private final Supplier<AgentClient> connect;
    private final Consumer<String> narrate;
    private final Duration reconnectFor;
    private long offset;
    private AgentClient borrowed;

    /**
     * @param connect      opens a client (called again after each lost connection, so a local
     *                     agent that restarted on another port is found again)
     * @param narrate      messages for the user (stderr)
     * @param reconnectFor how long to keep trying to reconnect after a connection is lost
     * @param from         the byte offset to start from
     */
    public LogFollower(Supplier<AgentClient> connect, Consumer<String> narrate, Duration reconnectFor, long from) {
        this.connect = connect;
        this.narrate = narrate;
        this.reconnectFor = reconnectFor;
        this.offset = from;
    }

    /**
     * Streams over {@code client} first (a connection the caller already has and closes itself,
     * saving a TLS handshake), and over new connections from {@code connect} after it is lost.
     */
    public LogFollower startingWith(AgentClient client) {
        this.borrowed = client;
        return this;
    }

    /** Bytes written so far (plus the starting offset). */
    public long offset() {
        return offset;
    }

    /**
     * Streams to {@code out}. Without {@code follow}, returns once the bytes present now are written
     * (null); with it, returns the build as it ended (null for the agent's log, which never ends).
     */
    public Build copy(String buildId, boolean follow, OutputStream out) throws IOException {
        if (dev.kiln.tls.GrpcTls.fellBack()) {
            // bin/kiln runs the CLI on C1 alone, on which the JDK's AES-GCM is slow (about 20 MB/s).
            narrate.accept("note: gRPC TLS runs on " + dev.kiln.tls.GrpcTls.describe() + "; for faster log "
                    + "streaming, give the CLI its optimising compiler back: KILN_JAVA_OPTS=-XX:TieredStopAtLevel=4");
        }
        Sink sink = Sink.of(out);
        Instant lostSince = null;
        long backoff = 250;
        while (true) {
            LogChunkMarshaller marshaller = new LogChunkMarshaller();
            AgentClient client = null;
            boolean own = borrowed == null;
            try {
                client = own ? connect.get() : borrowed;
                borrowed = null;
                AgentGrpc.AgentBlockingStub stub = client.streamingStub();
                Iterator<LogChunk> chunks = ClientCalls.blockingServerStreamingCall(stub.getChannel(), marshaller.method(),
                        stub.getCallOptions(), StreamLogsRequest.newBuilder()
                                .setBuildId(buildId).setFromOffset(offset).setFollow(follow).build());
                while (chunks.hasNext()) {
                    LogChunk c = chunks.next();
                    lostSince = null;
                    backoff = 250;
                    if (c.getEndOfLog()) {
                        sink.flush();
                        // A copy: the message may point into the transport's buffers, released below.
                        return c.hasBuild() ? Build.parseFrom(c.getBuild().toByteArray()) : null;
                    }
                    try {
                        write(c, sink);
                    } catch (StdoutFailed e) {
                        offset += e.written; // the part of the chunk that did reach stdout
                        throw new KilnException(ExitCodes.FAILURE, "cannot write the log of " + buildId + " to standard output: "
                                + e.getMessage() + " (" + offset + " bytes written; resume with `kiln logs "
                                + buildId + " --from " + offset + "`)", e.getCause());
                    } finally {
                        marshaller.release(c);
                    }
                }
                sink.flush();
                if (!follow) {
                    return null;
                }
                // The stream ended without an end-of-log message: the agent went away cleanly.
                throw Status.UNAVAILABLE.withDescription("log stream ended early").asRuntimeException();
            } catch (StatusRuntimeException e) {
                if (!follow || !retryable(e)) {
                    throw GrpcErrors.translate(e, client.endpoint());
                }
                lostSince = lostSince == null ? Instant.now() : lostSince;
                if (Instant.now().isAfter(lostSince.plus(reconnectFor))) {
                    throw new KilnException(ExitCodes.UNREACHABLE, "lost the agent for more than "
                            + reconnectFor.toSeconds() + "s while following " + buildId + " (" + offset
                            + " bytes received; resume with `kiln logs -f " + buildId + " --from " + offset + "`)", e);
                }
                narrate.accept("connection to the agent lost (" + e.getStatus().getCode() + "); resuming from byte "
                        + offset + "...");
            } catch (KilnException e) {
                if (!follow || e.exitCode() != ExitCodes.UNREACHABLE) {
                    throw e;
                }
                lostSince = lostSince == null ? Instant.now() : lostSince;
                if (Instant.now().isAfter(lostSince.plus(reconnectFor))) {
                    throw e;
                }
            } finally {
                marshaller.releaseAll();
                if (client != null && own) {
                    client.close();
                }
            }
            sleep(backoff);
            backoff = Math.min(backoff * 2, 2000);
        }
    }

    private void write(LogChunk c, Sink out) throws IOException {
        com.google.protobuf.ByteString data = c.getData();
        long start = c.getOffset();
        if (start > offset) {
            throw new KilnException(ExitCodes.FAILURE, "the agent skipped bytes " + offset + ".." + start
                    + " of the log; refusing to print a log with a hole");
        }
        int skip = (int) Math.min(data.size(), offset - start); // bytes we already have
        if (skip < data.size()) {
            out.write(skip == 0 ? data : data.substring(skip));
            offset += data.size() - skip;
        }
    }

    /**
     * Where the log's bytes go. The process's own stdout is written through its file descriptor,
     * straight from the transport's buffers; another stream (a test's) gets them as arrays. A
     * reader that went away (a closed pipe, as `| head` leaves) drops the rest of the bytes and is
     * not an error; any other failed write of stdout (a full disk) ends the command with the offset
     * to resume from.
     */
    private abstract static class Sink {

        static Sink of(OutputStream out) {
            return out == System.out ? new Stdout() : new ToStream(out);
        }

        abstract void write(com.google.protobuf.ByteString data) throws IOException;

        abstract void flush() throws IOException;
    }

    /** A write of stdout that failed for a reason other than its reader going away. */
    private static final class StdoutFailed extends RuntimeException {
        final long written;

        StdoutFailed(IOException cause, long written) {
            super(cause.getMessage(), cause);
            this.written = written;
        }
    }

    private static final class Stdout extends Sink {
        private final FileChannel fd1 = new FileOutputStream(FileDescriptor.out).getChannel(); // never closed: it is fd 1
        private boolean failed;

        Stdout() {
            System.out.flush(); // what the PrintStream holds goes first
        }

        @Override
        void write(com.google.protobuf.ByteString data) {
            if (failed) {
                return;
            }
            // One gathering write for the chunk's pieces (a chunk arrives as a dozen or more frames):
            // a write per piece would wake the reader of a pipe once per piece.
            ByteBuffer[] pieces = data.asReadOnlyByteBufferList().toArray(ByteBuffer[]::new);
            long written = 0;
            try {
                while (written < data.size()) {
                    written += fd1.write(pieces);
                }
            } catch (IOException e) {
                if (!readerGone()) {
                    throw new StdoutFailed(e, written);
                }
                failed = true;
            }
        }

        /** Whether stdout is a pipe or socket: a write to one fails only when its reader has gone. */
        private static boolean readerGone() {
            try {
                String target = Files.readSymbolicLink(Path.of("/proc/self/fd/1")).toString();
                return target.startsWith("pipe:") || target.startsWith("socket:");
            } catch (IOException | UnsupportedOperationException e) {
                return false;
            }
        }

        @Override
        void flush() {
            // nothing is buffered
        }
    }

    /** Writes to another stream (a test's, an in-process caller's): speed matters only for stdout. */
    private static final class ToStream extends Sink {
        private final OutputStream out;

        ToStream(OutputStream out) {
            this.out = out;
        }

        @Override
        void write(com.google.protobuf.ByteString data) throws IOException {
            data.writeTo(out);
        }

        @Override
        void flush() throws IOException {
            out.flush();
        }
    }

    private static boolean retryable(StatusRuntimeException e) {
        Status.Code c = e.getStatus().getCode();
        return c == Status.Code.UNAVAILABLE || c == Status.Code.CANCELLED || c == Status.Code.DEADLINE_EXCEEDED
                || c == Status.Code.UNKNOWN || c == Status.Code.INTERNAL && String.valueOf(e.getStatus().getDescription()).contains("RST_STREAM");
    }

    private static void sleep(long ms) {
        try {
            Thread.sleep(ms);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new KilnException(ExitCodes.FAILURE, "interrupted");
        }
    }
}
