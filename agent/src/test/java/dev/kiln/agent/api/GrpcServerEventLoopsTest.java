package dev.kiln.agent.api;

import io.grpc.Server;
import io.grpc.netty.NettyServerBuilder;
import org.junit.jupiter.api.Test;

import java.net.InetSocketAddress;
import java.net.Socket;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The agent's gRPC server runs on event loops of its own, which stop when told to, so that no
 * thread is left in epoll_wait when the JVM exits (GrpcServerEventLoops says why).
 */
class GrpcServerEventLoopsTest {

    private static List<Thread> loopThreads() {
        return Thread.getAllStackTraces().keySet().stream()
                .filter(t -> t.getName().startsWith("kiln-grpc-") && t.isAlive()).toList();
    }

    @Test
    void theServerAcceptsOnTheAgentsLoopsAndNoneIsLeftAfterShutdown() throws Exception {
        GrpcServerEventLoops loops = new GrpcServerEventLoops();
        Server server = loops.apply(NettyServerBuilder.forAddress(new InetSocketAddress("127.0.0.1", 0))).build().start();
        try (Socket s = new Socket("127.0.0.1", server.getPort())) {
            assertTrue(s.isConnected());
        }
        List<Thread> threads = loopThreads();
        assertTrue(threads.stream().anyMatch(t -> t.getName().startsWith("kiln-grpc-boss")), "the server accepts on the agent's boss loop: " + threads);
        assertTrue(threads.stream().allMatch(Thread::isDaemon), "loop threads are daemons");

        server.shutdown().awaitTermination(5, TimeUnit.SECONDS);
        loops.shutdown();
        for (Thread t : threads) {
            t.join(2000);
        }
        assertFalse(threads.stream().anyMatch(Thread::isAlive), "no loop thread is left running");
        loops.shutdown(); // a second call (or one with nothing made) is harmless
    }
}
