package dev.kiln.agent.lease;

import java.io.IOException;
import java.io.Reader;
import java.io.Writer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;
import java.util.Properties;

/**
 * The instance's lease: a deadline, persisted on disk so an agent restart keeps it (never resets
 * it), extendable up to a maximum lifetime counted from the first start.
 */
public final class Lease {

    private static final int REMEMBERED_REQUESTS = 200;

    private final Path file;
    private final Clock clock;
    private final Instant start;
    private final Instant maxDeadline;
    private Instant deadline; // null: no deadline (forever)
    private final Map<String, Instant> requests = new LinkedHashMap<>();

    private Lease(Path file, Clock clock, Instant start, Instant deadline, Instant maxDeadline) {
        this.file = file;
        this.clock = clock;
        this.start = start;
        this.deadline = deadline;
        this.maxDeadline = maxDeadline;
    }

    /**
     * Loads the lease from {@code file}, or starts one now from the settings when there is none.
     *
     * @param ttl         time to the deadline from the first start; null for no deadline
     * @param maxLifetime cap of any extension, from the first start
     */
    public static Lease load(Path file, Clock clock, Duration ttl, Duration maxLifetime) throws IOException {
        if (Files.exists(file)) {
            Properties p = new Properties();
            try (Reader r = Files.newBufferedReader(file)) {
                p.load(r);
            }
            Instant start = Instant.parse(p.getProperty("start"));
            String d = p.getProperty("deadline", "");
            Lease lease = new Lease(file, clock, start, d.isEmpty() ? null : Instant.parse(d),
                    Instant.parse(p.getProperty("max-deadline")));
            p.stringPropertyNames().stream().filter(k -> k.startsWith("request.")).sorted()
                    .forEach(k -> lease.requests.put(k.substring("request.".length()), Instant.parse(p.getProperty(k))));
            return lease;
        }
        Instant now = clock.instant().truncatedTo(java.time.temporal.ChronoUnit.SECONDS);
        Lease lease = new Lease(file, clock, now, ttl == null ? null : now.plus(ttl), now.plus(maxLifetime));
        lease.save();
        return lease;
    }

    public synchronized Instant start() {
        return start;
    }

    /** The deadline; empty when the lease has none (forever). */
    public synchronized Optional<Instant> deadline() {
        return Optional.ofNullable(deadline);
    }

    public synchronized Instant maxDeadline() {
        return maxDeadline;
    }

    /** Time left; zero when past; empty when forever. */
    public synchronized Optional<Duration> remaining() {
        if (deadline == null) {
            return Optional.empty();
        }
        Duration d = Duration.between(clock.instant(), deadline);
        return Optional.of(d.isNegative() ? Duration.ZERO : d);
    }

    public synchronized boolean expired() {
        return deadline != null && !clock.instant().isBefore(deadline);
    }

    /**
     * Moves the deadline later: by {@code by} from the current deadline, or to {@code until}.
     * Never earlier; never past the maximum lifetime. A repeated request id returns the deadline
     * its first use set, without extending again.
     */
    public synchronized Instant extend(Duration by, Instant until, String requestId) throws IOException {
        if (requestId != null && !requestId.isEmpty() && requests.containsKey(requestId)) {
            return requests.get(requestId);
        }
        if (deadline == null) {
            throw new LeaseException("this agent has no deadline (kiln.lease.forever), so there is nothing to extend");
        }
        Instant target;
        if (by != null) {
            if (by.isNegative() || by.isZero()) {
                throw new IllegalArgumentException("extend by a positive duration, not " + by);
            }
            target = deadline.plus(by);
        } else if (until != null) {
            target = until;
        } else {
            throw new IllegalArgumentException("say how far to extend: a duration (by) or a time (until)");
        }
        if (target.isAfter(maxDeadline)) {
            throw new LeaseException("cannot extend the lease to " + seconds(target) + ": the maximum lifetime ends at "
                    + seconds(maxDeadline) + " (kiln.lease.max-lifetime from the first start at " + seconds(start)
                    + "); extend to at most " + seconds(maxDeadline) + ", or launch a new instance");
        }
        if (target.isAfter(deadline)) {
            deadline = target;
        }
        if (requestId != null && !requestId.isEmpty()) {
            requests.put(requestId, deadline);
            while (requests.size() > REMEMBERED_REQUESTS) {
                requests.remove(requests.keySet().iterator().next());
            }
        }
        save();
        return deadline;
    }

    private static String seconds(Instant i) {
        return i.truncatedTo(java.time.temporal.ChronoUnit.SECONDS).toString();
    }

    private void save() throws IOException {
        Properties p = new Properties();
        p.setProperty("start", start.toString());
        p.setProperty("deadline", deadline == null ? "" : deadline.toString());
        p.setProperty("max-deadline", maxDeadline.toString());
        requests.forEach((k, v) -> p.setProperty("request." + k, v.toString()));
        Files.createDirectories(file.toAbsolutePath().getParent());
        Path tmp = file.resolveSibling(file.getFileName() + ".tmp");
        try (Writer w = Files.newBufferedWriter(tmp)) {
            p.store(w, "kiln-agent lease: do not edit while the agent runs");
        }
        try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.WRITE)) {
            ch.force(true);
        }
        Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    }
}
