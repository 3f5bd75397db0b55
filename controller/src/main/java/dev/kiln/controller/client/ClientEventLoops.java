package dev.kiln.controller.client;

import dev.kiln.netty.EventLoops;
import io.netty.channel.EventLoopGroup;

/**
 * The Netty event loops of this process's agent connections, which {@link #shutdown()} stops
 * before the CLI exits, so that the JVM's exit does not wait for them ({@link EventLoops} says
 * why).
 */
public final class ClientEventLoops {

    private static EventLoopGroup group;

    private ClientEventLoops() {
    }

    /** The process's event loop group, created on first use (again after a {@link #shutdown()}). */
    public static synchronized EventLoopGroup group() {
        if (group == null || group.isShuttingDown()) {
            group = EventLoops.daemonGroup("kiln-grpc", Math.max(2, Runtime.getRuntime().availableProcessors()));
        }
        return group;
    }

    /** Stops the event loops (at most a second). Harmless when none were made. */
    public static void shutdown() {
        EventLoopGroup g;
        synchronized (ClientEventLoops.class) {
            g = group;
            group = null;
        }
        EventLoops.stopNow(g);
    }
}
