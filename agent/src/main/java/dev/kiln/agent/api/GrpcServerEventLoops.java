package dev.kiln.agent.api;

import io.grpc.ServerBuilder;
import io.grpc.netty.NettyServerBuilder;
import io.micronaut.context.event.BeanCreatedEvent;
import io.micronaut.context.event.BeanCreatedEventListener;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.nio.NioIoHandler;
import io.netty.channel.socket.nio.NioServerSocketChannel;
import io.netty.util.concurrent.DefaultThreadFactory;
import jakarta.inject.Singleton;

import java.util.concurrent.TimeUnit;

/**
 * The gRPC server's Netty event loops, owned by the agent so that {@link #shutdown()} can stop
 * them after the server, before the JVM exits.
 *
 * <p>With gRPC's shared groups, their threads were still waiting in {@code epoll_wait} (a native
 * call) when the agent's shutdown hook ended, and HotSpot's exit waits for threads in native code,
 * in steps of 10 ms, for up to 300 ms: strace of an agent stopped with TERM showed 0.32 s between
 * its last thread ending and {@code exit_group}, with only the gRPC boss and worker threads left.
 * The CLI has the same fix ({@code ClientEventLoops}).
 */
@Singleton
public final class GrpcServerEventLoops implements BeanCreatedEventListener<ServerBuilder<?>> {

    private EventLoopGroup boss;
    private EventLoopGroup workers;

    @Override
    public ServerBuilder<?> onCreated(BeanCreatedEvent<ServerBuilder<?>> event) {
        ServerBuilder<?> builder = event.getBean();
        if (builder instanceof NettyServerBuilder netty) {
            apply(netty);
        }
        return builder;
    }

    /** Gives the builder this agent's boss and worker groups (made on first use). */
    public synchronized NettyServerBuilder apply(NettyServerBuilder netty) {
        if (boss == null) {
            boss = new MultiThreadIoEventLoopGroup(1, new DefaultThreadFactory("kiln-grpc-boss", true),
                    NioIoHandler.newFactory());
            // 0: Netty's default thread count (twice the cores), as gRPC's shared worker group has.
            workers = new MultiThreadIoEventLoopGroup(0, new DefaultThreadFactory("kiln-grpc-worker", true),
                    NioIoHandler.newFactory());
        }
        return netty.bossEventLoopGroup(boss).workerEventLoopGroup(workers).channelType(NioServerSocketChannel.class);
    }

    /**
     * Stops the event loops, at most a second each; call it after the gRPC server has shut down
     * (closing the application context does that). Harmless when none were made.
     */
    public void shutdown() {
        EventLoopGroup b;
        EventLoopGroup w;
        synchronized (this) {
            b = boss;
            w = workers;
            boss = null;
            workers = null;
        }
        if (b != null) {
            b.shutdownGracefully(0, 0, TimeUnit.MILLISECONDS);
            w.shutdownGracefully(0, 0, TimeUnit.MILLISECONDS);
            b.terminationFuture().awaitUninterruptibly(1, TimeUnit.SECONDS);
            w.terminationFuture().awaitUninterruptibly(1, TimeUnit.SECONDS);
        }
    }
}
