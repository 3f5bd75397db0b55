package dev.kiln.agent.logs;

import dev.kiln.agent.lease.BusySource;
import jakarta.inject.Singleton;

import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;

/** Counts open log streams: a client following a log keeps the agent from being idle. */
@Singleton
public final class ActiveStreams implements BusySource {

    private final AtomicInteger open = new AtomicInteger();

    public void opened() {
        open.incrementAndGet();
    }

    public void closed() {
        open.decrementAndGet();
    }

    @Override
    public List<String> busyReasons() {
        int n = open.get();
        return n == 0 ? List.of() : List.of(n + " log stream" + (n == 1 ? "" : "s") + " open");
    }
}
