package dev.kiln.agent.build;

import dev.kiln.agent.logs.FinishedLog;
import dev.kiln.agent.logs.LogChannel;
import dev.kiln.agent.logs.LogFile;
import dev.kiln.agent.logs.LogSource;
import dev.kiln.agent.volume.MountTable;
import dev.kiln.agent.volume.MountUsers;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
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
import java.util.TreeMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;

/**
 * Runs builds: one at a time per work tree (others fail or queue), each as the unprivileged build
 * user in its own process group, with every byte of output on disk before anyone reads it. Build
 * records survive agent restarts; a build that was running when the agent stopped is marked
 * {@link BuildState#INTERRUPTED} (tup continues incrementally when it is run again).
 */
public final class BuildManager implements AutoCloseable, MountUsers, dev.kiln.agent.lease.BusySource {

    private static final Logger LOG = LoggerFactory.getLogger(BuildManager.class);
    private static final DateTimeFormatter ID_TIME = DateTimeFormatter.ofPattern("yyyyMMdd-HHmmss").withZone(ZoneOffset.UTC);
    private static final SecureRandom RANDOM = new SecureRandom();
    private static final String PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

    private final BuildStore store;
    private final ProcessLauncher launcher;
    private final Clock clock;
    private final Supplier<BuildUser> user;
    private final Path profilesDir;
    private final Duration cancelGrace;
    private final ExecutorService workers = Executors.newCachedThreadPool(r -> {
        Thread t = new Thread(r, "kiln-build");
        t.setDaemon(true);
        return t;
    });
    private final ScheduledExecutorService timer = Executors.newSingleThreadScheduledExecutor(r -> {
        Thread t = new Thread(r, "kiln-build-timer");
        t.setDaemon(true);
        return t;
    });

    private final Map<String, BuildRecord> records = new LinkedHashMap<>();
    private final Map<String, Running> running = new HashMap<>();
    private final Map<Path, String> busyTrees = new HashMap<>();
    private final Map<Path, ArrayDeque<String>> queues = new HashMap<>();
    private boolean accepting = true;

    /** A build whose process (or set-up) is in progress. */
    private final class Running {
        final LogFile log;
        volatile Process process;
        volatile boolean cancelRequested;
        volatile boolean interruptRequested;

        Running(LogFile log) {
            this.log = log;
        }
    }

    /**
     * @param store       where records and logs live
     * @param launcher    starts processes as the build user
     * @param clock       time source
     * @param user        resolves the build user (at each build, so a missing user is a build error)
     * @param profilesDir directory of NAME.config profile files, or null
     * @param cancelGrace time between TERM and KILL
     */
    public BuildManager(BuildStore store, ProcessLauncher launcher, Clock clock, Supplier<BuildUser> user,
                        Path profilesDir, Duration cancelGrace) throws IOException {
        this.store = store;
        this.launcher = launcher;
        this.clock = clock;
        this.user = user;
        this.profilesDir = profilesDir;
        this.cancelGrace = cancelGrace;
        List<String> problems = new ArrayList<>();
        List<BuildRecord> loaded = store.loadAll(problems);
        problems.forEach(LOG::warn);
        loaded.sort(Comparator.comparing(BuildRecord::createdAt));
        for (BuildRecord r : loaded) {
            if (!r.state().ended()) {
                stopOrphans(r.id());
                // The agent stopped while this build ran or waited: say so, durably.
                long size = Files.exists(store.log(r.id())) ? Files.size(store.log(r.id())) : 0;
                r = r.ended(BuildState.INTERRUPTED, clock.instant(), null, size);
                store.save(r);
                LOG.info("build {} was interrupted by an agent restart; run it again to continue", r.id());
            }
            records.put(r.id(), r);
        }
    }

    /** Ends processes a crashed agent left running for a build: TERM their groups, then KILL. */
    private void stopOrphans(String id) {
        List<Long> orphans = launcher.processesOf(id);
        if (orphans.isEmpty()) {
            return;
        }
        LOG.warn("build {} still has processes from before the agent restarted ({}); stopping them", id, orphans);
        orphans.forEach(pid -> ProcessHandle.of(pid).ifPresent(h -> h.destroy()));
        for (int i = 0; i < 50 && orphans.stream().anyMatch(pid -> ProcessHandle.of(pid).map(ProcessHandle::isAlive).orElse(false)); i++) {
            try {
                Thread.sleep(100);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                break;
            }
        }
        orphans.forEach(pid -> ProcessHandle.of(pid).ifPresent(ProcessHandle::destroyForcibly));
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
        Running run = running.get(id);
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
        Running run;
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
        stop(run, grace == null || grace.isZero() ? cancelGrace : grace);
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
        Running run = running.get(id);
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
        List<Running> all;
        synchronized (this) {
            accepting = false;
            all = new ArrayList<>(running.values());
            all.forEach(r -> r.interruptRequested = true);
            queues.clear();
        }
        for (Running r : all) {
            stop(r, Duration.ofSeconds(5));
        }
        workers.shutdown();
        try {
            workers.awaitTermination(15, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        timer.shutdownNow();
    }

    private void stop(Running run, Duration grace) {
        Process p = run.process;
        if (p == null || !p.isAlive()) {
            return;
        }
        launcher.signalGroup(p.pid(), "TERM");
        try {
            if (!p.waitFor(grace.toMillis(), TimeUnit.MILLISECONDS)) {
                launcher.signalGroup(p.pid(), "KILL");
                p.waitFor(10, TimeUnit.SECONDS);
            }
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
        Running run = new Running(log);
        BuildRecord started = queued.started(clock.instant());
        store.save(started);
        records.put(started.id(), started);
        running.put(started.id(), run);
        busyTrees.put(tree, started.id());
        LOG.info("build {} started in {}", started.id(), tree);
        workers.execute(() -> execute(started, run));
        return started;
    }

    private void execute(BuildRecord record, Running run) {
        Integer exit = null;
        String failure = null;
        try {
            BuildUser buildUser = user.get();
            Map<String, String> env = new TreeMap<>();
            env.put("PATH", PATH);
            env.put("HOME", buildUser.home().toString());
            env.put("USER", buildUser.name());
            env.put("LOGNAME", buildUser.name());
            env.put("LANG", "C.UTF-8");
            env.put("KILN_BUILD_ID", record.id());
            Path tree = record.spec().workTree().normalize();
            if (record.spec().tup()) {
                exit = runTup(record, run, buildUser, env, tree);
            } else {
                env.putAll(record.spec().env());
                exit = runProcess(record, run, record.spec().argv(), buildUser, env, tree, false);
            }
        } catch (IOException | RuntimeException e) {
            failure = e.getMessage() == null ? e.toString() : e.getMessage();
            note(run, "kiln: build could not run: " + failure + "\n");
        }
        finish(record.id(), run, exit, failure);
    }

    private int runTup(BuildRecord record, Running run, BuildUser buildUser, Map<String, String> env, Path tree)
            throws IOException {
        if (!Files.isDirectory(tree.resolve(".tup"), LinkOption.NOFOLLOW_LINKS)) {
            note(run, "kiln: initialising tup in " + tree + "\n");
            int init = runProcess(record, run, List.of("tup", "init"), buildUser, env, tree, false);
            if (init != 0) {
                return init;
            }
        }
        for (BuildSpec.Profile p : profiles(record.spec())) {
            writeProfile(tree, p, buildUser, run);
        }
        List<String> argv = new ArrayList<>(List.of("tup"));
        record.spec().profiles().forEach(p -> argv.add("build-" + p));
        for (String p : record.spec().profiles()) {
            if (!Files.isRegularFile(tree.resolve("build-" + p).resolve("tup.config"))) {
                throw new IllegalArgumentException("profile '" + p + "' is not defined: no " + tree.resolve("build-" + p)
                        .resolve("tup.config") + " and no definition in the request or kiln.builds.profiles-dir");
            }
        }
        return runProcess(record, run, argv, buildUser, env, tree, true);
    }

    /** Profile definitions from kiln.builds.profiles-dir, overridden by the request's. */
    private List<BuildSpec.Profile> profiles(BuildSpec spec) throws IOException {
        Map<String, BuildSpec.Profile> byName = new TreeMap<>();
        if (profilesDir != null && Files.isDirectory(profilesDir)) {
            readProfiles(profilesDir).forEach(p -> byName.put(p.name(), p));
        }
        spec.profileDefinitions().forEach(p -> byName.put(p.name(), p));
        return new ArrayList<>(byName.values());
    }

    /**
     * The profiles a directory defines: each {@code NAME.config} file (tup.config lines,
     * {@code CONFIG_KEY=value}; blank lines and # comments skipped) is profile NAME, in name order.
     */
    public static List<BuildSpec.Profile> readProfiles(Path dir) throws IOException {
        List<BuildSpec.Profile> out = new ArrayList<>();
        try (var files = Files.list(dir)) {
            for (Path f : files.filter(f -> f.getFileName().toString().endsWith(".config")).sorted().toList()) {
                String name = f.getFileName().toString().replaceFirst("\\.config$", "");
                Map<String, String> config = new TreeMap<>();
                for (String line : Files.readAllLines(f, StandardCharsets.UTF_8)) {
                    String l = line.strip();
                    if (l.isEmpty() || l.startsWith("#") || !l.contains("=")) {
                        continue;
                    }
                    config.put(l.substring(0, l.indexOf('=')).strip().replaceFirst("^CONFIG_", ""),
                            l.substring(l.indexOf('=') + 1).strip());
                }
                out.add(new BuildSpec.Profile(name, config));
            }
        }
        return out;
    }

    /**
     * Writes a profile's {@code build-NAME/tup.config}, with the build user's file access: the
     * work tree is the build user's to change at any moment, so nothing there is written with
     * root's.
     */
    private void writeProfile(Path tree, BuildSpec.Profile profile, BuildUser buildUser, Running run) throws IOException {
        Path dir = tree.resolve("build-" + profile.name());
        StringBuilder text = new StringBuilder();
        new TreeMap<>(profile.config()).forEach((k, v) ->
                text.append("CONFIG_").append(k.replaceFirst("^CONFIG_", "")).append('=').append(v).append('\n'));
        Path config = dir.resolve("tup.config");
        boolean written;
        try {
            written = buildUser.access().run(() -> {
                if (Files.isSymbolicLink(dir)) {
                    throw new IllegalArgumentException(dir + " is a symbolic link; refusing to write a profile through it");
                }
                if (Files.isRegularFile(config, LinkOption.NOFOLLOW_LINKS)
                        && Files.readString(config, StandardCharsets.UTF_8).equals(text.toString())) {
                    return false; // unchanged: leave it alone so tup has nothing to re-parse
                }
                if (Files.isSymbolicLink(config)) {
                    throw new IllegalArgumentException(config + " is a symbolic link; refusing to write a profile through it");
                }
                if (!Files.exists(dir, LinkOption.NOFOLLOW_LINKS)) {
                    Files.createDirectory(dir);
                }
                Files.writeString(config, text.toString(), StandardCharsets.UTF_8, StandardOpenOption.CREATE,
                        StandardOpenOption.TRUNCATE_EXISTING, StandardOpenOption.WRITE, LinkOption.NOFOLLOW_LINKS);
                return true;
            });
        } catch (java.nio.file.FileSystemException e) {
            throw new IOException("cannot write profile " + profile.name() + " to " + config + " as the build user "
                    + buildUser.name() + ": " + (e.getReason() != null ? e.getReason()
                    : e instanceof java.nio.file.AccessDeniedException ? "permission denied" : e.getClass().getSimpleName()), e);
        }
        if (written) {
            note(run, "kiln: wrote profile " + profile.name() + " to " + config + "\n");
        }
    }

    private int runProcess(BuildRecord record, Running run, List<String> argv, BuildUser buildUser,
                           Map<String, String> env, Path dir, boolean tupProgress) throws IOException {
        synchronized (this) {
            if (run.cancelRequested || run.interruptRequested) {
                return 143;
            }
        }
        Process p = launcher.start(argv, dir, buildUser, env);
        run.process = p;
        TupProgress progress = tupProgress ? new TupProgress() : null;
        // Only tup's output is parsed for progress; a command build's output is only logged.
        LineSplitter lines = progress == null ? null
                : new LineSplitter(line -> progress.line(line).ifPresent(c -> updateProgress(record.id(), c)));
        var stderrPump = workers.submit(() -> pump(p.getErrorStream(), LogChannel.STDERR, run, null));
        pump(p.getInputStream(), LogChannel.STDOUT, run, lines);
        try {
            stderrPump.get();
            return p.waitFor();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted while waiting for the build", e);
        } catch (java.util.concurrent.ExecutionException e) {
            throw new IOException("reading the build's stderr failed: " + e.getCause(), e.getCause());
        }
    }

    private Void pump(InputStream in, LogChannel stream, Running run, LineSplitter lines) {
        // As large as a pipe's buffer (64 KiB on Linux): a busy build's output is taken in one
        // read, one write to the log and one wake-up of its followers, not four.
        byte[] buf = new byte[65536];
        try (in) {
            int n;
            while ((n = in.read(buf)) > 0) {
                run.log.append(stream, buf, 0, n);
                if (lines != null) {
                    lines.feed(buf, n);
                }
            }
        } catch (IOException e) {
            LOG.warn("lost output of a build: {}", e.toString());
        }
        return null;
    }

    private synchronized void updateProgress(String id, TupProgress.Count c) {
        BuildRecord r = records.get(id);
        if (r != null) {
            records.put(id, r.progress(c.done(), c.total()));
        }
    }

    private void note(Running run, String text) {
        try {
            byte[] b = text.getBytes(StandardCharsets.UTF_8);
            run.log.append(LogChannel.STDERR, b, 0, b.length);
        } catch (IOException e) {
            LOG.warn("cannot write to a build log: {}", e.toString());
        }
    }

    private void finish(String id, Running run, Integer exit, String failure) {
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

    /** Splits bytes into lines for progress parsing (bounded: very long lines are cut). */
    static final class LineSplitter {
        private final java.util.function.Consumer<String> sink;
        private final java.io.ByteArrayOutputStream line = new java.io.ByteArrayOutputStream();

        LineSplitter(java.util.function.Consumer<String> sink) {
            this.sink = sink;
        }

        void feed(byte[] b, int n) {
            int start = 0; // the current line's bytes in b: start..i
            for (int i = 0; i < n; i++) {
                if (b[i] == '\n' || b[i] == '\r') {
                    keep(b, start, i);
                    if (line.size() > 0) {
                        sink.accept(line.toString(StandardCharsets.UTF_8));
                        line.reset();
                    }
                    start = i + 1;
                }
            }
            keep(b, start, n);
        }

        /** Appends b[from..to) to the line, up to 4096 bytes in all (the rest is cut). */
        private void keep(byte[] b, int from, int to) {
            int len = Math.min(to - from, 4096 - line.size());
            if (len > 0) {
                line.write(b, from, len);
            }
        }
    }
}
