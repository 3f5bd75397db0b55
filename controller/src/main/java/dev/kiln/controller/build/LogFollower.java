package dev.kiln.controller.build;

import dev.kiln.controller.ExitCodes;
import dev.kiln.controller.KilnException;
import dev.kiln.controller.client.AgentClient;
import dev.kiln.controller.client.GrpcErrors;
import dev.kiln.proto.agent.v1.Build;
import dev.kiln.proto.agent.v1.LogChunk;
import dev.kiln.proto.agent.v1.StreamLogsRequest;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;

import java.io.IOException;
import java.io.OutputStream;
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
        Instant lostSince = null;
        long backoff = 250;
        while (true) {
            AgentClient client = null;
            boolean own = borrowed == null;
            try {
                client = own ? connect.get() : borrowed;
                borrowed = null;
                Iterator<LogChunk> chunks = client.streamingStub().streamLogs(StreamLogsRequest.newBuilder()
                        .setBuildId(buildId).setFromOffset(offset).setFollow(follow).build());
                while (chunks.hasNext()) {
                    LogChunk c = chunks.next();
                    lostSince = null;
                    backoff = 250;
                    if (c.getEndOfLog()) {
                        out.flush();
                        return c.hasBuild() ? c.getBuild() : null;
                    }
                    write(c, out);
                }
                out.flush();
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
                if (client != null && own) {
                    client.close();
                }
            }
            sleep(backoff);
            backoff = Math.min(backoff * 2, 2000);
        }
    }

    private void write(LogChunk c, OutputStream out) throws IOException {
        com.google.protobuf.ByteString data = c.getData();
        long start = c.getOffset();
        if (start > offset) {
            throw new KilnException(ExitCodes.FAILURE, "the agent skipped bytes " + offset + ".." + start
                    + " of the log; refusing to print a log with a hole");
        }
        int skip = (int) Math.min(data.size(), offset - start); // bytes we already have
        if (skip < data.size()) {
            // ByteString.writeTo(OutputStream) copies the bytes first; this hands over its array.
            com.google.protobuf.UnsafeByteOperations.unsafeWriteTo(skip == 0 ? data : data.substring(skip), new ToStream(out));
            offset += data.size() - skip;
        }
    }

    /** Writes a ByteString's own array to the output; nothing here keeps or changes it. */
    private static final class ToStream extends com.google.protobuf.ByteOutput {
        private final OutputStream out;

        ToStream(OutputStream out) {
            this.out = out;
        }

        @Override
        public void write(byte value) throws IOException {
            out.write(value);
        }

        @Override
        public void write(byte[] value, int offset, int length) throws IOException {
            out.write(value, offset, length);
        }

        @Override
        public void writeLazy(byte[] value, int offset, int length) throws IOException {
            out.write(value, offset, length);
        }

        @Override
        public void write(java.nio.ByteBuffer value) throws IOException {
            byte[] b = new byte[value.remaining()];
            value.get(b);
            out.write(b);
        }

        @Override
        public void writeLazy(java.nio.ByteBuffer value) throws IOException {
            write(value);
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
