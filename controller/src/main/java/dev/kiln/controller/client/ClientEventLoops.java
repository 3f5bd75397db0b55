package dev.kiln.controller.client;

import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.nio.NioIoHandler;
import io.netty.util.concurrent.DefaultThreadFactory;

import java.util.concurrent.TimeUnit;

/**
 * The Netty event loops of this process's agent connections, which {@link #shutdown()} stops
 * before the CLI exits.
 *
 * <p>Why not gRPC's own shared group: its threads wait for network events inside a native call
 * ({@code epoll_wait}), and a JVM that exits while any thread is in native code waits for them to
 * stop, in steps of 10 ms, for up to 300 ms (HotSpot's {@code VM_Exit::
 * wait_for_threads_in_native_to_block}). strace of {@code kiln status} showed the VM thread
 * polling for those 0.3 s after the command's work was done. A group of our own can be stopped
 * first, so no thread is left in {@code epoll_wait} when the JVM exits.
 */
public final class ClientEventLoops {

    private static EventLoopGroup group;

    private ClientEventLoops() {
    }

    /** The process's event loop group, created on first use (again after a {@link #shutdown()}). */
    public static synchronized EventLoopGroup group() {
        if (group == null || group.isShuttingDown()) {
            group = new MultiThreadIoEventLoopGroup(Math.max(2, Runtime.getRuntime().availableProcessors()),
                    new DefaultThreadFactory("kiln-grpc", true), NioIoHandler.newFactory());
        }
        return group;
    }

    /**
     * Stops the event loops, waiting at most a second for them to end (channels closed by then
     * have nothing left to do). Harmless when none were made.
     */
    public static void shutdown() {
        EventLoopGroup g;
        synchronized (ClientEventLoops.class) {
            g = group;
            group = null;
        }
        if (g != null) {
            g.shutdownGracefully(0, 0, TimeUnit.MILLISECONDS).awaitUninterruptibly(1, TimeUnit.SECONDS);
        }
    }
}
