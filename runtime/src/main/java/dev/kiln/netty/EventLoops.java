package dev.kiln.netty;

import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.nio.NioIoHandler;
import io.netty.util.concurrent.DefaultThreadFactory;

import java.util.concurrent.TimeUnit;

/**
 * Netty event loop groups that a Kiln program owns, so that it can stop them before the JVM exits.
 *
 * <p>Why not gRPC's shared groups: their threads wait for network events inside a native call
 * ({@code epoll_wait}), and a JVM that exits while any thread is in native code waits for them to
 * stop, in steps of 10 ms, for up to 300 ms (HotSpot's {@code VM_Exit::
 * wait_for_threads_in_native_to_block}): at the end of every CLI command and of every agent stop.
 * A group of one's own can be stopped first, so no thread is left in {@code epoll_wait} at exit
 * (docs/performance.md).
 */
public final class EventLoops {

    private EventLoops() {
    }

    /**
     * A group of NIO event loops on daemon threads named {@code NAME-...}; {@code threads} 0 is
     * Netty's default (twice the cores).
     */
    public static EventLoopGroup daemonGroup(String name, int threads) {
        return new MultiThreadIoEventLoopGroup(threads, new DefaultThreadFactory(name, true), NioIoHandler.newFactory());
    }

    /**
     * Stops the groups at once (no quiet period), waiting at most a second for each to end;
     * channels closed by then have nothing left to do. Null groups are skipped.
     */
    public static void stopNow(EventLoopGroup... groups) {
        for (EventLoopGroup g : groups) {
            if (g != null) {
                g.shutdownGracefully(0, 0, TimeUnit.MILLISECONDS);
            }
        }
        for (EventLoopGroup g : groups) {
            if (g != null) {
                g.terminationFuture().awaitUninterruptibly(1, TimeUnit.SECONDS);
            }
        }
    }
}
