package dev.kiln.controller.client;

import com.google.common.util.concurrent.ListenableFuture;
import dev.kiln.proto.agent.v1.AgentGrpc;
import dev.kiln.proto.agent.v1.StatusRequest;
import dev.kiln.proto.agent.v1.StatusResponse;
import io.grpc.ConnectivityState;
import io.grpc.Deadline;
import io.grpc.ManagedChannel;
import io.grpc.StatusRuntimeException;
import io.grpc.netty.NettyChannelBuilder;
import io.netty.channel.socket.nio.NioSocketChannel;
import io.netty.handler.ssl.SslContext;

import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * A connection to one agent over gRPC with mutual TLS. Every call has a deadline; failures come
 * back as {@link dev.kiln.controller.KilnException} with a message and an exit code.
 */
public final class AgentClient implements AutoCloseable {

    private final AgentEndpoint endpoint;
    private final ManagedChannel channel;
    private final Duration timeout;
    private final long contacted;

    public AgentClient(AgentEndpoint endpoint, ClientTls tls, Duration timeout) {
        this(endpoint, tls.sslContext(), timeout);
    }

    /** A client with an explicit TLS context (tests use it to present wrong certificates). */
    public AgentClient(AgentEndpoint endpoint, SslContext sslContext, Duration timeout) {
        this(endpoint, channel(endpoint, sslContext), timeout);
    }

    /** A client over a channel to {@code endpoint} that it now owns (closes). */
    public AgentClient(AgentEndpoint endpoint, ManagedChannel channel, Duration timeout) {
        this(endpoint, channel, timeout, System.nanoTime());
    }

    /** A client over a channel that began to connect at {@code contacted} (System.nanoTime). */
    public AgentClient(AgentEndpoint endpoint, ManagedChannel channel, Duration timeout, long contacted) {
        this.endpoint = endpoint;
        this.timeout = timeout;
        this.channel = channel;
        this.contacted = contacted;
    }

    /**
     * How many bytes the agent may send ahead of what the CLI has taken: 16 chunks of a streamed
     * log. gRPC's 1 MiB (four chunks) leaves the agent waiting for window updates while the CLI
     * writes (figures in docs/performance.md).
     */
    static final int FLOW_CONTROL_WINDOW = 4 * 1024 * 1024;

    /** A new channel to the agent (it connects at the first call, or when asked to). */
    public static ManagedChannel channel(AgentEndpoint endpoint, SslContext sslContext) {
        NettyChannelBuilder builder = NettyChannelBuilder.forAddress(endpoint.host(), endpoint.port())
                .eventLoopGroup(ClientEventLoops.group())
                .channelType(NioSocketChannel.class)
                .sslContext(sslContext)
                .flowControlWindow(FLOW_CONTROL_WINDOW);
        if (endpoint.serverName() != null) {
            builder.overrideAuthority(endpoint.serverName());
        }
        return builder.build();
    }

    public AgentEndpoint endpoint() {
        return endpoint;
    }

    /** The agent's status. */
    public StatusResponse status() {
        try {
            return stub().status(StatusRequest.getDefaultInstance());
        } catch (StatusRuntimeException e) {
            throw translate(e);
        }
    }

    /** The agent's status, asked now and answered by {@code deadline} (one of many asked at once). */
    public ListenableFuture<StatusResponse> status(Deadline deadline) {
        return AgentGrpc.newFutureStub(channel).withDeadline(deadline).status(StatusRequest.getDefaultInstance());
    }

    /**
     * The deadline of one call made now: the timeout from when this client's channel began to
     * connect while it is still connecting (an agent that never answers costs the timeout, however
     * late the call), or from now once the agent has answered the handshake (a slow CLI is not
     * blamed on the agent).
     */
    public Deadline contactDeadline() {
        return channel.getState(false) == ConnectivityState.READY ? Deadline.after(timeout.toNanos(), TimeUnit.NANOSECONDS)
                : Deadline.after(contacted + timeout.toNanos() - System.nanoTime(), TimeUnit.NANOSECONDS);
    }

    /**
     * The agent's status once its channel connects: the call waits (gRPC's wait-for-ready) through
     * refused connections and failed handshakes until this client's deadline.
     */
    public ListenableFuture<StatusResponse> statusWhenReady() {
        return AgentGrpc.newFutureStub(channel).withWaitForReady()
                .withDeadlineAfter(timeout.toMillis(), TimeUnit.MILLISECONDS)
                .status(StatusRequest.getDefaultInstance());
    }

    /** Connects again now rather than after the channel's reconnect backoff (an agent known to be starting). */
    public void reconnectNow() {
        channel.resetConnectBackoff();
    }

    /** A failed call of a {@link #stub()} as a message and an exit code, naming this client's deadline. */
    public dev.kiln.controller.KilnException translate(StatusRuntimeException e) {
        return GrpcErrors.translate(e, endpoint, timeout);
    }

    /** A blocking stub with this client's deadline. */
    public AgentGrpc.AgentBlockingStub stub() {
        return AgentGrpc.newBlockingStub(channel).withDeadlineAfter(timeout.toMillis(), TimeUnit.MILLISECONDS);
    }

    /** A stub without a deadline, for streams that last as long as a build. */
    public AgentGrpc.AgentBlockingStub streamingStub() {
        return AgentGrpc.newBlockingStub(channel);
    }

    /** Closes these clients: all their channels at once, then waits for each (at most 2 s in all). */
    public static void closeAll(List<AgentClient> clients) {
        clients.forEach(c -> c.channel.shutdownNow());
        long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(2);
        try {
            for (AgentClient c : clients) {
                c.channel.awaitTermination(Math.max(0, end - System.nanoTime()), TimeUnit.NANOSECONDS);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    @Override
    public void close() {
        channel.shutdownNow();
        try {
            channel.awaitTermination(2, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
