package dev.kiln.controller.build;

import com.google.protobuf.ByteString;
import dev.kiln.controller.client.AgentClient;
import dev.kiln.controller.client.AgentEndpoint;
import dev.kiln.proto.agent.v1.AgentGrpc;
import dev.kiln.proto.agent.v1.LogChunk;
import dev.kiln.proto.agent.v1.StreamLogsRequest;
import io.grpc.CallOptions;
import io.grpc.ManagedChannel;
import io.grpc.Server;
import io.grpc.netty.NettyChannelBuilder;
import io.grpc.netty.NettyServerBuilder;
import io.grpc.stub.ClientCalls;
import io.grpc.stub.StreamObserver;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Iterator;
import java.util.List;
import java.util.Random;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * What the CLI makes of log chunks that arrive over gRPC's real Netty transport on loopback. The
 * agent's side is a service that sends chosen chunks (the whole agent is in the e2e tests): only
 * so can a chunk start before the offset the CLI already has, as one resent after a reconnect does.
 */
class LogFollowerTest {

    private static final int CHUNK = 256 * 1024;

    private Server server;
    private final List<ManagedChannel> channels = new ArrayList<>();

    @AfterEach
    void stop() throws InterruptedException {
        channels.forEach(ManagedChannel::shutdownNow);
        if (server != null) {
            server.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
        }
    }

    /** Serves {@code chunks} to every StreamLogs call, then ends the stream. */
    private ManagedChannel serve(List<LogChunk> chunks) throws Exception {
        server = NettyServerBuilder.forAddress(new InetSocketAddress("127.0.0.1", 0)).addService(new AgentGrpc.AgentImplBase() {
            @Override
            public void streamLogs(StreamLogsRequest request, StreamObserver<LogChunk> out) {
                chunks.forEach(out::onNext);
                out.onCompleted();
            }
        }).build().start();
        ManagedChannel channel = NettyChannelBuilder.forAddress("127.0.0.1", server.getPort()).usePlaintext().build();
        channels.add(channel);
        return channel;
    }

    private static byte[] random(int n, long seed) {
        byte[] b = new byte[n];
        new Random(seed).nextBytes(b);
        return b;
    }

    /** The log {@code bytes} as chunks of up to {@link #CHUNK} bytes. */
    private static List<LogChunk> chunks(byte[] bytes) {
        List<LogChunk> out = new ArrayList<>();
        for (int at = 0; at < bytes.length; at += CHUNK) {
            out.add(LogChunk.newBuilder().setOffset(at)
                    .setData(ByteString.copyFrom(bytes, at, Math.min(CHUNK, bytes.length - at))).build());
        }
        return out;
    }

    @Test
    void copiesEveryByteOfALogOfManyChunksInOrder() throws Exception {
        byte[] log = random(5 * CHUNK + 12345, 1);
        ManagedChannel channel = serve(chunks(log));
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        LogFollower follower = new LogFollower(() -> {
            throw new AssertionError("no second connection");
        }, m -> { }, Duration.ofSeconds(5), 0).startingWith(client(channel));
        assertNull(follower.copy("b-1", false, out));
        assertArrayEquals(log, out.toByteArray());
        assertEquals(log.length, follower.offset());
    }

    @Test
    void resumingFromAnOffsetPrintsOnlyTheBytesAfterIt() throws Exception {
        byte[] log = random(CHUNK + 100, 2);
        ManagedChannel channel = serve(chunks(log)); // the first chunk starts before the offset
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        LogFollower follower = new LogFollower(() -> {
            throw new AssertionError("no second connection");
        }, m -> { }, Duration.ofSeconds(5), 1000).startingWith(client(channel));
        follower.copy("b-1", false, out);
        assertArrayEquals(Arrays.copyOfRange(log, 1000, log.length), out.toByteArray());
        assertEquals(log.length, follower.offset());
    }

    @Test
    void aChunksDataIsAViewOfTheTransportsBuffersHeldUntilReleased() throws Exception {
        byte[] log = random(3 * CHUNK, 3);
        ManagedChannel channel = serve(chunks(log));
        LogChunkMarshaller marshaller = new LogChunkMarshaller();
        Iterator<LogChunk> it = ClientCalls.blockingServerStreamingCall(channel, marshaller.method(), CallOptions.DEFAULT,
                StreamLogsRequest.newBuilder().setBuildId("b-1").build());
        ByteArrayOutputStream got = new ByteArrayOutputStream();
        while (it.hasNext()) {
            LogChunk c = it.next();
            assertTrue(marshaller.held() >= 1, "the chunk's buffers are held while it is being written");
            for (ByteBuffer b : c.getData().asReadOnlyByteBufferList()) {
                assertTrue(b.isDirect(), "the bytes were not copied onto the heap");
            }
            got.write(c.getData().toByteArray());
            marshaller.release(c);
        }
        marshaller.releaseAll();
        assertEquals(0, marshaller.held());
        assertArrayEquals(log, got.toByteArray());
    }

    private static AgentClient client(ManagedChannel channel) {
        return new AgentClient(new AgentEndpoint("127.0.0.1", 1, null), channel, Duration.ofSeconds(10));
    }
}
