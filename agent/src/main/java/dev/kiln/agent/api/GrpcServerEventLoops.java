package dev.kiln.agent.api;

import dev.kiln.agent.tls.TlsHandshakeLog;
import dev.kiln.netty.EventLoops;
import io.grpc.ServerBuilder;
import io.grpc.netty.NettyServerBuilder;
import io.micronaut.context.event.BeanCreatedEvent;
import io.micronaut.context.event.BeanCreatedEventListener;
import io.netty.channel.EventLoopGroup;
import jakarta.inject.Singleton;

/**
 * The gRPC server's Netty event loops and its listening channel ({@link TlsHandshakeLog}'s). The
 * agent owns the loops so that {@link #shutdown()} can stop them after the server, before the JVM
 * exits; with gRPC's shared groups, HotSpot's exit would wait up to 0.3 s for their threads
 * ({@link EventLoops} says why).
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

    /** Gives the builder this agent's boss and worker groups (made on first use) and listening channel. */
    public synchronized NettyServerBuilder apply(NettyServerBuilder netty) {
        if (boss == null) {
            boss = EventLoops.daemonGroup("kiln-grpc-boss", 1);
            // 0: Netty's default thread count (twice the cores), as gRPC's shared worker group has.
            workers = EventLoops.daemonGroup("kiln-grpc-worker", 0);
        }
        // NIO listening channels, as the loops are NIO's; each logs the TLS handshakes it fails.
        return netty.bossEventLoopGroup(boss).workerEventLoopGroup(workers).channelFactory(TlsHandshakeLog::newServerChannel);
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
        EventLoops.stopNow(b, w);
    }
}
