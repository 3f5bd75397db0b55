package dev.kiln.netty;

import io.netty.channel.EventLoopGroup;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** A Kiln program's own event loops run on named daemon threads, and stopNow ends them before it returns. */
class EventLoopsTest {

    private static List<Thread> threads(String prefix) {
        return Thread.getAllStackTraces().keySet().stream().filter(t -> t.getName().startsWith(prefix) && t.isAlive()).toList();
    }

    @Test
    void stopNowEndsEveryLoopOfTheGroupsItIsGivenAndSkipsNulls() throws Exception {
        EventLoopGroup a = EventLoops.daemonGroup("kiln-test-a", 2);
        EventLoopGroup b = EventLoops.daemonGroup("kiln-test-b", 1);
        for (EventLoopGroup g : List.of(a, a, b)) {
            g.next().submit(() -> { }).get(5, TimeUnit.SECONDS);
        }
        List<Thread> started = threads("kiln-test-");
        assertFalse(started.isEmpty(), "the loops run on threads named after their group");
        assertTrue(started.stream().allMatch(Thread::isDaemon), "and they are daemons");

        EventLoops.stopNow(a, null, b);

        assertTrue(a.isTerminated() && b.isTerminated(), "stopNow returns once the groups have ended");
    }
}
