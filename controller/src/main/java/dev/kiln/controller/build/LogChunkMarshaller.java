package dev.kiln.controller.build;

import com.google.protobuf.ByteString;
import com.google.protobuf.CodedInputStream;
import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.UnsafeByteOperations;
import dev.kiln.proto.agent.v1.AgentGrpc;
import dev.kiln.proto.agent.v1.LogChunk;
import dev.kiln.proto.agent.v1.StreamLogsRequest;
import io.grpc.Detachable;
import io.grpc.HasByteBuffer;
import io.grpc.KnownLength;
import io.grpc.MethodDescriptor;
import io.grpc.Status;

import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;

/**
 * Parses the log chunks of one StreamLogs call without copying their bytes: a chunk's data is a
 * view of the transport's decrypted buffers, which stay held until {@link #release} hands them
 * back (once the bytes are written). gRPC's own marshaller copies every byte twice (into a scratch
 * array, then into a new array per chunk), which costs the CLI more CPU than decrypting them.
 * Where the transport's buffers cannot be viewed, it parses with gRPC's marshaller.
 */
final class LogChunkMarshaller implements MethodDescriptor.PrototypeMarshaller<LogChunk> {

    private final MethodDescriptor.Marshaller<LogChunk> copying = AgentGrpc.getStreamLogsMethod().getResponseMarshaller();
    private final Map<LogChunk, InputStream> held = new IdentityHashMap<>();
    private boolean closed;

    /** StreamLogs with this marshaller for its answers. */
    MethodDescriptor<StreamLogsRequest, LogChunk> method() {
        MethodDescriptor<StreamLogsRequest, LogChunk> m = AgentGrpc.getStreamLogsMethod();
        return m.toBuilder(m.getRequestMarshaller(), this).build();
    }

    @Override
    public Class<LogChunk> getMessageClass() {
        return LogChunk.class;
    }

    @Override
    public LogChunk getMessagePrototype() {
        return LogChunk.getDefaultInstance();
    }

    @Override
    public InputStream stream(LogChunk value) {
        return copying.stream(value);
    }

    @Override
    public LogChunk parse(InputStream stream) {
        if (!(stream instanceof KnownLength && stream instanceof Detachable && stream instanceof HasByteBuffer b
                && b.byteBufferSupported())) {
            return copying.parse(stream);
        }
        InputStream detached = ((Detachable) stream).detach(); // now ours to close
        try {
            ByteString bytes = view(detached);
            if (bytes == null) { // a buffer that cannot be viewed: copy this one
                try (detached) {
                    return copying.parse(detached);
                }
            }
            CodedInputStream in = bytes.newCodedInput();
            in.enableAliasing(true);
            in.setSizeLimit(Integer.MAX_VALUE);
            LogChunk chunk = LogChunk.parseFrom(in);
            in.checkLastTagWas(0);
            synchronized (held) {
                if (!closed) {
                    held.put(chunk, detached);
                    return chunk;
                }
            }
            // The call was given up on while this chunk arrived: nobody will release it.
            detached.close();
            return chunk;
        } catch (InvalidProtocolBufferException e) {
            close(detached);
            throw Status.INTERNAL.withDescription("invalid log chunk from the agent").withCause(e).asRuntimeException();
        } catch (IOException | RuntimeException e) {
            close(detached);
            throw e instanceof RuntimeException r ? r : new IllegalStateException(e);
        }
    }

    /** The stream's bytes as one ByteString over its buffers; null if one cannot be viewed (reset then). */
    private static ByteString view(InputStream in) throws IOException {
        in.mark(in.available());
        List<ByteString> parts = new ArrayList<>();
        while (in.available() > 0) {
            ByteBuffer buf = ((HasByteBuffer) in).getByteBuffer();
            if (buf == null) {
                in.reset();
                return null;
            }
            parts.add(UnsafeByteOperations.unsafeWrap(buf));
            in.skip(buf.remaining());
        }
        in.reset();
        return ByteString.copyFrom(parts); // a rope over the parts: nothing is copied
    }

    /** Hands a written chunk's buffers back to the transport; the chunk's data is invalid after. */
    void release(LogChunk chunk) {
        InputStream s;
        synchronized (held) {
            s = held.remove(chunk);
        }
        close(s);
    }

    /** Releases every chunk still held, now and as they arrive: the call is over or given up on. */
    void releaseAll() {
        List<InputStream> all;
        synchronized (held) {
            closed = true;
            all = new ArrayList<>(held.values());
            held.clear();
        }
        all.forEach(LogChunkMarshaller::close);
    }

    private static void close(InputStream s) {
        if (s != null) {
            try {
                s.close();
            } catch (IOException e) {
                // a transport buffer's close releases it and does no I/O
            }
        }
    }

    /** Chunks held now (for tests). */
    int held() {
        synchronized (held) {
            return held.size();
        }
    }
}
