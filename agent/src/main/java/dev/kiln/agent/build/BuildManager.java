package dev.kiln.agent.build;

import dev.kiln.agent.logs.FinishedLog;
import dev.kiln.agent.logs.LogFile;
import dev.kiln.agent.logs.LogSource;
import dev.kiln.agent.volume.MountTable;
import dev.kiln.agent.volume.MountUsers;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.time.Clock;
import java.time.Duration;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;

/**
 * The builds of this agent and their lifecycle: one at a time per work tree (others fail or
 * queue), cancelled on request, on unmount or at shutdown, with records that survive agent
 * restarts. {@link BuildRunner} runs each build's processes, {@link OrphanRecovery} ends what an
 * agent restart cut short.
 */
public final class BuildManager implements AutoCloseable, MountUsers, dev.kiln.agent.lease.BusySource {

    private static final Logger LOG = LoggerFactory.getLogger(BuildManager.class);
    private static final DateTimeFormatter ID_TIME = DateTimeFormatter.ofPattern("yyyyMMdd-HHmmss").withZone(ZoneOffset.UTC);
    private static final SecureRandom RANDOM = new SecureRandom();

    private final BuildStore store;
    private final ProcessLauncher launcher;
    private final Clock clock;
    private final Duration cancelGrace;
    private final ExecutorService workers = Executors.newCachedThreadPool(r -> {
        Thread t = new Thread(r, "kiln-build");
        t.setDaemon(true);
        return t;
    });
    private final BuildRunner runner;

    private final Map<String, BuildRecord> records = new LinkedHashMap<>();
    private final Map<String, RunningBuild> running = new HashMap<>();
    private final Map<Path, String> busyTrees = new HashMap<>();
    private final Map<Path, ArrayDeque<String>> queues = new HashMap<>();
    private boolean accepting = true;

    /**
     * Recovers the records of earlier builds (see {@link OrphanRecovery}).
     *
     * @param store       where records and logs live
     * @param launcher    starts processes as the build user
     * @param clock       time source
     * @param user        resolves the build user (at each build, so a missing user is a build error)
     * @param profiles    the tup profiles a build may use
     * @param cancelGrace time between TERM and KILL
     */
    public BuildManager(BuildStore store, ProcessLauncher launcher, Clock clock, Supplier<BuildUser> user,
                        TupProfiles profiles, Duration cancelGrace) throws IOException {
        this.store = store;
        this.launcher = launcher;
        this.clock = clock;
        this.cancelGrace = cancelGrace;
        this.runner = new BuildRunner(launcher, user, profiles, workers);
        for (BuildRecord r : new OrphanRecovery(store, launcher, clock).recover()) {
            records.put(r.id(), r);
        }
    }

    /** Starts (or queues) a build. Repeating a request id returns the build it started. */
    public synchronized BuildRecord start(BuildSpec spec) throws IOException {
        spec.validate();
        if (!spec.requestId().isEmpty()) {
            Optional<BuildRecord> same = byRequestId(spec.requestId());
            if (same.isPresent()) {
                return same.get();
            }
        }
        if (!accepting) {
            throw new IllegalStateException("the agent is shutting down and accepts no new builds");
        }
        Path tree = spec.workTree().normalize();
        if (!Files.isDirectory(tree, LinkOption.NOFOLLOW_LINKS)) {
            throw new IllegalArgumentException("work tree " + tree + " is not a directory on this agent");
        }
        if (spec.tup()) {
            Optional<Path> readOnly = readOnlyMount(tree);
            if (readOnly.isPresent()) {
                throw new WorkTreeReadOnlyException(tree, readOnly.get());
            }
        }
        String busy = busyTrees.get(tree);
        if (busy != null && !spec.queue()) {
            throw new BuildConflictException(busy, tree.toString());
        }
        String id = "b-" + ID_TIME.format(clock.instant()) + "-" + HexFormat.of().formatHex(new byte[]{
                (byte) RANDOM.nextInt(), (byte) RANDOM.nextInt()});
        BuildRecord record = new BuildRecord(id, spec, BuildState.QUEUED, clock.instant(), null, null, null, 0, 0, 0);
        store.save(record);
        records.put(id, record);
        if (busy != null) {
            queues.computeIfAbsent(tree, t -> new ArrayDeque<>()).add(id);
            LOG.info("build {} queued behind {} in {}", id, busy, tree);
            return record;
        }
        return launch(record);
    }

    /** The mount point of the read-only mount holding {@code tree}, if it is on one (from mountinfo). */
    static Optional<Path> readOnlyMount(Path tree) throws IOException {
        Path real = tree.toRealPath();
        MountTable.Entry holder = null;
        for (MountTable.Entry e : new MountTable().read()) {
            // The deepest mount point above the tree; at the same point, the later mount is on top.
            if (real.startsWith(e.mountPoint())
                    && (holder == null || e.mountPoint().getNameCount() >= holder.mountPoint().getNameCount())) {
                holder = e;
            }
        }
        return holder != null && holder.readOnly() ? Optional.of(holder.mountPoint()) : Optional.empty();
    }

    /** The build a request with this id started, if any (records survive agent restarts). */
    public synchronized Optional<BuildRecord> byRequestId(String requestId) {
        return records.values().stream().filter(r -> r.spec().requestId().equals(requestId)).findFirst()
                .map(r -> get(r.id()));
    }

    /** One build's record. */
    public synchronized BuildRecord get(String id) {
        BuildRecord r = records.get(id);
        if (r == null) {
            throw new BuildNotFoundException(id);
        }
        RunningBuild run = running.get(id);
        return run == null ? r : r.logSize(run.log.size());
    }

    /** Records, newest first. */
    public synchronized List<BuildRecord> list(int limit) {
        List<BuildRecord> all = new ArrayList<>(records.keySet().stream().map(this::get).toList());
        all.sort(Comparator.comparing(BuildRecord::createdAt).reversed());
        return all.subList(0, Math.min(all.size(), limit <= 0 ? 100 : limit));
    }

    /** The running build, if any (the newest, when several work trees are busy). */
    public synchronized Optional<BuildRecord> current() {
        return running.keySet().stream().map(this::get).max(Comparator.comparing(BuildRecord::createdAt));
    }

    /**
     * Cancels a build: a queued one at once; a running one by TERM to its process group, then KILL
     * after the grace period. A finished build is returned unchanged.
     */
    public BuildRecord cancel(String id, Duration grace) throws IOException {
        RunningBuild run;
        synchronized (this) {
            BuildRecord r = get(id);
            if (r.state() == BuildState.QUEUED) {
                queues.getOrDefault(r.spec().workTree().normalize(), new ArrayDeque<>()).remove(id);
                BuildRecord done = r.ended(BuildState.CANCELLED, clock.instant(), null, 0);
                store.save(done);
                records.put(id, done);
                return done;
            }
            run = running.get(id);
            if (run == null) {
                return r;
            }
            run.cancelRequested = true;
        }
        run.stop(launcher, grace == null || grace.isZero() ? cancelGrace : grace);
        // The runner records the end right after the process exits; wait for that, briefly.
        for (int i = 0; i < 100 && !run.log.isClosed(); i++) {
            try {
                Thread.sleep(50);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                break;
            }
        }
        return get(id);
    }

    /**
     * Cancels every queued or running build whose work tree is at or under {@code mountPoint}
     * (the unmount hook): the build user's processes stop through the build's own cancel path
     * (TERM to its process group, KILL after the grace), and the records say CANCELLED.
     */
    @Override
    public List<String> release(Path mountPoint, Duration grace) {
        List<String> ids;
        synchronized (this) {
            ids = records.values().stream()
                    .filter(r -> !r.state().ended() && r.spec().workTree().normalize().startsWith(mountPoint))
                    .map(BuildRecord::id).toList();
        }
        List<String> stopped = new ArrayList<>();
        for (String id : ids) {
            try {
                BuildRecord r = cancel(id, grace);
                stopped.add("build " + id + " (" + r.state().name().toLowerCase(java.util.Locale.ROOT) + ")");
                LOG.info("cancelled build {}: its work tree is on {}, which is being unmounted", id, mountPoint);
            } catch (IOException | RuntimeException e) {
                LOG.warn("could not cancel build {} before unmounting {}: {}", id, mountPoint, e.toString());
            }
        }
        return stopped;
    }

    /** The log of a build, for streaming. */
    public synchronized LogSource log(String id) {
        BuildRecord r = get(id);
        RunningBuild run = running.get(id);
        return run != null ? run.log : new FinishedLog(store.log(id), r.logSize());
    }

    /** Ids of the builds running or queued now. */
    public synchronized List<String> activeIds() {
        List<String> ids = new ArrayList<>(running.keySet());
        queues.values().forEach(ids::addAll);
        return ids;
    }

    @Override
    public synchronized List<String> busyReasons() {
        List<String> reasons = new ArrayList<>();
        running.keySet().forEach(id -> reasons.add("build " + id + " running"));
        queues.values().forEach(q -> q.forEach(id -> reasons.add("build " + id + " queued")));
        return reasons;
    }

    /** Stops accepting builds (drain); running ones continue until cancelled. */
    public synchronized void refuseNewBuilds() {
        accepting = false;
    }

    /**
     * Interrupts every running build (TERM, then KILL after a short grace) and records it as
     * INTERRUPTED: what an agent restart means for a build.
     */
    @Override
    public void close() {
        List<RunningBuild> all;
        synchronized (this) {
            accepting = false;
            all = new ArrayList<>(running.values());
            all.forEach(r -> r.interruptRequested = true);
            queues.clear();
        }
        for (RunningBuild r : all) {
            r.stop(launcher, Duration.ofSeconds(5));
        }
        workers.shutdown();
        try {
            workers.awaitTermination(15, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    private BuildRecord launch(BuildRecord queued) throws IOException {
        Path tree = queued.spec().workTree().normalize();
        LogFile log;
        try {
            log = LogFile.open(store.log(queued.id()));
        } catch (IOException | RuntimeException e) {
            BuildRecord failed = queued.ended(BuildState.FAILED, clock.instant(), null, 0);
            records.put(failed.id(), failed);
            store.save(failed);
            throw new IOException("cannot create the log of build " + queued.id() + ": " + e.getMessage(), e);
        }
        RunningBuild run = new RunningBuild(log);
        BuildRecord started = queued.started(clock.instant());
        store.save(started);
        records.put(started.id(), started);
        running.put(started.id(), run);
        busyTrees.put(tree, started.id());
        LOG.info("build {} started in {}", started.id(), tree);
        workers.execute(() -> execute(started, run));
        return started;
    }

    private void execute(BuildRecord record, RunningBuild run) {
        Integer exit = null;
        String failure = null;
        try {
            exit = runner.run(record, run, c -> updateProgress(record.id(), c));
        } catch (IOException | RuntimeException e) {
            failure = e.getMessage() == null ? e.toString() : e.getMessage();
            run.note("kiln: build could not run: " + failure + "\n");
        }
        finish(record.id(), run, exit, failure);
    }

    private synchronized void updateProgress(String id, TupProgress.Count c) {
        BuildRecord r = records.get(id);
        if (r != null) {
            records.put(id, r.progress(c.done(), c.total()));
        }
    }

    private void finish(String id, RunningBuild run, Integer exit, String failure) {
        BuildRecord ended;
        synchronized (this) {
            BuildRecord r = records.get(id);
            BuildState state;
            if (run.interruptRequested) {
                state = BuildState.INTERRUPTED;
            } else if (run.cancelRequested) {
                state = BuildState.CANCELLED;
            } else if (failure == null && exit != null && exit == 0) {
                state = BuildState.SUCCEEDED;
            } else {
                state = BuildState.FAILED;
            }
            ended = r.ended(state, clock.instant(), exit, run.log.size());
            records.put(id, ended);
            running.remove(id);
            Path tree = r.spec().workTree().normalize();
            busyTrees.remove(tree);
            try {
                store.save(ended);
            } catch (IOException e) {
                LOG.error("cannot save the record of build {}: {}", id, e.toString());
            }
        }
        try {
            run.log.close(); // wakes followers, who now see the ended record
        } catch (IOException e) {
            LOG.error("cannot close the log of build {}: {}", id, e.toString());
        }
        LOG.info("build {} ended: {}{}", id, ended.state(), ended.exitCode() == null ? "" : " (exit " + ended.exitCode() + ")");
        startNext(ended.spec().workTree().normalize());
    }

    private synchronized void startNext(Path tree) {
        ArrayDeque<String> q = queues.get(tree);
        if (q == null || q.isEmpty() || !accepting) {
            return;
        }
        String next = q.poll();
        try {
            launch(records.get(next));
        } catch (IOException e) {
            LOG.error("cannot start queued build {}: {}", next, e.toString());
        }
    }
}
