package dev.kiln.controller.client;

import io.netty.channel.EventLoopGroup;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The CLI stops its event loop threads before it exits: a thread left in epoll_wait makes the
 * JVM's exit wait for it (ClientEventLoops says why).
 */
class ClientEventLoopsTest {

    private static List<Thread> eventLoopThreads() {
        return Thread.getAllStackTraces().keySet().stream()
                .filter(t -> t.getName().startsWith("kiln-grpc") && t.isAlive()).toList();
    }

    @Test
    void shutdownLeavesNoEventLoopThreadRunningAndTheNextUseGetsANewGroup() throws Exception {
        EventLoopGroup first = ClientEventLoops.group();
        // Start every loop's thread, as channels on them would.
        for (int i = 0; i < 4; i++) {
            first.next().submit(() -> { }).get(5, TimeUnit.SECONDS);
        }
        assertTrue(eventLoopThreads().stream().allMatch(Thread::isDaemon), "event loop threads are daemons");
        List<Thread> threads = eventLoopThreads();
        assertTrue(!threads.isEmpty(), "the loops run on threads named kiln-grpc-*");

        ClientEventLoops.shutdown();

        assertTrue(first.isTerminated(), "shutdown waits for the loops to end");
        for (Thread t : threads) {
            t.join(2000); // a loop whose work is over may still be returning from its run method
        }
        assertEquals(List.of(), eventLoopThreads());
        EventLoopGroup second = ClientEventLoops.group();
        assertNotSame(first, second);
        assertTrue(!second.isShuttingDown());
        ClientEventLoops.shutdown();
        ClientEventLoops.shutdown(); // harmless when there is none
    }
}
