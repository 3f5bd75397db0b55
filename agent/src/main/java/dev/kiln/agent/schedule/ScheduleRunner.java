package dev.kiln.agent.schedule;

import dev.kiln.agent.lease.BusySource;
import dev.kiln.agent.lease.DrainParticipant;
import dev.kiln.agent.volume.KilnMount;
import dev.kiln.agent.volume.VolumeNotFoundException;
import dev.kiln.agent.volume.VolumeRefusedException;
import dev.kiln.agent.volume.VolumeService;
import dev.kiln.time.Durations;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.ReentrantLock;

/**
 * Runs snapshot schedules unattended: optional pre command, freeze (under a lease, so the freeze
 * never outlasts it even if the snapshot call hangs), the snapshot call, thaw as soon as the call
 * returns, optional post command, then retention (the newest {@code keep} of Kiln's snapshots of
 * the role and collection stay, always the newest, never one Kiln did not make).
 *
 * <p>A run missed while the agent was down runs once, {@code catchUp} after start, never as a
 * burst of catch-ups. A failed run is tried again after a backoff and shows as a problem in
 * Status until a run succeeds. Runs happen one at a time on one thread.
 */
public final class ScheduleRunner implements DrainParticipant, BusySource, AutoCloseable {

    private static final Logger LOG = LoggerFactory.getLogger(ScheduleRunner.class);

    private final ScheduleStore store;
    private final VolumeService volumes;
    private final SnapshotBackend backend;
    private final String noBackend;
    private final HookCommand hooks;
    private final Clock clock;
    private final Duration freezeLease;
    private final Duration catchUp;
    private final Duration retryBase;
    private final ScheduledExecutorService executor;
    private final ReentrantLock running = new ReentrantLock();

    private final Map<String, ScheduleState> schedules = new LinkedHashMap<>();
    private String settingsKey = "";
    private String storeProblem;
    private ScheduledFuture<?> wake;
    private volatile boolean stopped;
    private volatile boolean started;
    private volatile String runningRole;

    /**
     * @param backend     where snapshots go, or null when this agent has none ({@code noBackend} says why)
     * @param freezeLease the longest a run keeps the volume frozen
     * @param catchUp     how long after start a missed run runs
     * @param retryBase   the first wait after a failed run (doubled with each failure in a row)
     */
    public ScheduleRunner(ScheduleStore store, VolumeService volumes, SnapshotBackend backend, String noBackend,
                          HookCommand hooks, Clock clock, Duration freezeLease, Duration catchUp, Duration retryBase) {
        this.store = store;
        this.volumes = volumes;
        this.backend = backend;
        this.noBackend = noBackend;
        this.hooks = hooks;
        this.clock = clock;
        this.freezeLease = freezeLease;
        this.catchUp = catchUp;
        this.retryBase = retryBase;
        this.executor = Executors.newSingleThreadScheduledExecutor(r -> {
            Thread t = new Thread(r, "kiln-schedules");
            t.setDaemon(true);
            return t;
        });
        try {
            ScheduleStore.Contents c = store.load();
            c.schedules().forEach(s -> schedules.put(s.spec().role(), s));
            settingsKey = c.settingsKey();
        } catch (IOException e) {
            // Start without them rather than not at all; the file is left for someone to look at.
            storeProblem = "cannot read the snapshot schedules (" + e.getMessage() + "); no schedule runs until they are"
                    + " set again (kiln schedule), which replaces " + store.file();
            LOG.error(storeProblem);
        }
    }

    /**
     * Applies the schedules of the {@code kiln.schedules} setting, once per distinct setting: a
     * schedule turned off or changed at run time stays so across restarts until the setting changes.
     */
    public synchronized void applySettings(List<ScheduleSpec> specs, String key) {
        if (specs.isEmpty() && settingsKey.isEmpty() || key.equals(settingsKey)) {
            return;
        }
        Instant now = clock.instant();
        for (ScheduleSpec spec : specs) {
            ScheduleState old = schedules.get(spec.role());
            schedules.put(spec.role(), old == null ? ScheduleState.fresh(spec, now) : old.respecified(spec, now));
        }
        settingsKey = key;
        saveQuietly();
    }

    /**
     * Sets (creates or replaces) the schedule of a role. The same schedule twice leaves one,
     * with its history.
     *
     * @throws IllegalArgumentException naming the field that is wrong
     * @throws VolumeNotFoundException  when no volume of that role is mounted by Kiln
     * @throws VolumeRefusedException   when this agent has nowhere to put snapshots
     */
    public ScheduleState set(ScheduleSpec spec) throws IOException {
        spec.validate();
        if (backend == null) {
            throw new VolumeRefusedException("this agent cannot take snapshots: " + noBackend + "; nothing was scheduled");
        }
        KilnMount m = mountOf(spec.role());
        try {
            backend.target(spec.role(), m); // refuses a volume the backend cannot snapshot, now rather than at 03:00
        } catch (IOException e) {
            throw new VolumeRefusedException("cannot snapshot the " + spec.role() + " volume at " + m.mountPoint() + " into "
                    + backend.describe() + ": " + e.getMessage() + "; nothing was scheduled");
        }
        ScheduleState s;
        synchronized (this) {
            ScheduleState old = schedules.get(spec.role());
            s = old == null ? ScheduleState.fresh(spec, clock.instant()) : old.respecified(spec, clock.instant());
            schedules.put(spec.role(), s);
            storeProblem = null;
            save();
        }
        LOG.info("snapshot schedule of {} set: {}; next run {}", spec.role(), spec.describe(), s.nextRun());
        reschedule();
        return s;
    }

    /**
     * Removes the schedule of a role.
     *
     * @return the removed schedule, if there was one
     */
    public Optional<ScheduleState> remove(String role) throws IOException {
        ScheduleState gone;
        synchronized (this) {
            gone = schedules.remove(role);
            if (gone != null) {
                save();
            }
        }
        if (gone != null) {
            LOG.info("snapshot schedule of {} removed", role);
            reschedule();
        }
        return Optional.ofNullable(gone);
    }

    /** Every schedule, in the order they were set. */
    public synchronized List<ScheduleState> list() {
        return new ArrayList<>(schedules.values());
    }

    /** Problems for Status: schedules that are failing, or that could not be read. */
    public synchronized List<String> problems() {
        List<String> out = new ArrayList<>();
        if (storeProblem != null) {
            out.add(storeProblem);
        }
        for (ScheduleState s : schedules.values()) {
            if (s.failures() > 0) {
                out.add("snapshot schedule of " + s.spec().role() + " is failing (" + s.failures() + " failed run"
                        + (s.failures() == 1 ? "" : "s") + " in a row): " + s.lastResult() + "; next try at " + s.nextRun());
            }
        }
        return out;
    }

    @Override
    public List<String> busyReasons() {
        String role = runningRole;
        return role == null ? List.of() : List.of("scheduled snapshot of " + role + " running");
    }

    /** Starts running: a run missed while the agent was down is due {@code catchUp} from now, once. */
    public void start() {
        synchronized (this) {
            if (started) {
                return;
            }
            started = true;
            Instant now = clock.instant();
            Instant soon = now.plus(catchUp);
            for (ScheduleState s : List.copyOf(schedules.values())) {
                if (!s.nextRun().isAfter(now)) {
                    LOG.info("the snapshot schedule of {} missed its run at {} (the agent was not running); it runs once at {}",
                            s.spec().role(), s.nextRun(), soon);
                    schedules.put(s.spec().role(), s.withNextRun(soon));
                }
            }
            saveQuietly();
        }
        reschedule();
    }

    /**
     * Runs the schedule of {@code role} now, on the caller's thread, and records the result as a
     * scheduled run would.
     */
    public ScheduleState runNow(String role) {
        running.lock();
        try {
            ScheduleState s;
            synchronized (this) {
                s = schedules.get(role);
            }
            if (s == null) {
                throw new IllegalArgumentException("no snapshot schedule for " + role);
            }
            return record(run(s));
        } finally {
            running.unlock();
        }
    }

    @Override
    public String step() {
        return "stop snapshot schedules";
    }

    @Override
    public int order() {
        return 20; // before SSH sessions close (40) and volumes unmount (50)
    }

    @Override
    public String drain(Duration budget) throws Exception {
        stopped = true;
        synchronized (this) {
            if (wake != null) {
                wake.cancel(false);
            }
        }
        String role = runningRole;
        if (running.tryLock(budget.toMillis(), TimeUnit.MILLISECONDS)) {
            running.unlock();
            return role == null ? "no scheduled snapshot was running" : "the scheduled snapshot of " + role + " finished";
        }
        return "the scheduled snapshot of " + role + " is still running (its freeze ends with its lease)";
    }

    @Override
    public void close() {
        stopped = true;
        executor.shutdownNow();
        if (backend instanceof AutoCloseable c) {
            try {
                c.close();
            } catch (Exception e) {
                LOG.warn("closing the snapshot backend: {}", e.toString());
            }
        }
    }

    private void reschedule() {
        synchronized (this) {
            if (!started || stopped) {
                return;
            }
            if (wake != null) {
                wake.cancel(false);
            }
            Optional<Instant> next = schedules.values().stream().map(ScheduleState::nextRun).min(Comparator.naturalOrder());
            if (next.isEmpty()) {
                wake = null;
                return;
            }
            long delay = Math.max(0, Duration.between(clock.instant(), next.get()).toMillis());
            wake = executor.schedule(this::tick, delay, TimeUnit.MILLISECONDS);
        }
    }

    private void tick() {
        try {
            while (!stopped) {
                ScheduleState due;
                synchronized (this) {
                    Instant now = clock.instant();
                    due = schedules.values().stream().filter(s -> !s.nextRun().isAfter(now))
                            .min(Comparator.comparing(ScheduleState::nextRun)).orElse(null);
                }
                if (due == null) {
                    break;
                }
                running.lock();
                try {
                    if (stopped) {
                        break;
                    }
                    record(run(due));
                } finally {
                    running.unlock();
                }
            }
        } catch (RuntimeException e) {
            LOG.error("the snapshot scheduler failed: {}", e.toString(), e);
        } finally {
            reschedule();
        }
    }

    /** Keeps a run's result, unless the schedule was removed meanwhile. */
    private ScheduleState record(ScheduleState after) {
        synchronized (this) {
            ScheduleState now = schedules.get(after.spec().role());
            if (now == null) {
                return after;
            }
            ScheduleState kept = now.spec().equals(after.spec()) ? after
                    : new ScheduleState(now.spec(), now.setAt(), now.nextRun(), after.lastRun(), after.lastOk(),
                    after.lastResult(), after.lastSnapshot(), after.failures());
            schedules.put(kept.spec().role(), kept);
            saveQuietly();
            return kept;
        }
    }

    /** One run; never throws: a failure is the result. */
    private ScheduleState run(ScheduleState s) {
        ScheduleSpec spec = s.spec();
        Instant started = clock.instant();
        runningRole = spec.role();
        try {
            Result r = snapshot(spec);
            Instant end = clock.instant();
            LOG.info("scheduled snapshot of {}: {}", spec.role(), r.text());
            return s.succeeded(started, r.snapshot(), r.text(), Clockwork.next(spec, s.setAt(), end));
        } catch (Exception e) {
            String why = e.getMessage() == null ? e.toString() : e.getMessage();
            Instant end = clock.instant();
            Instant retry = Clockwork.retry(spec, s.setAt(), end, s.failures() + 1, retryBase);
            LOG.error("scheduled snapshot of {} failed: {}; trying again at {}", spec.role(), why, retry);
            return s.failed(started, why, retry);
        } finally {
            runningRole = null;
        }
    }

    private record Result(String snapshot, String text) {
    }

    private Result snapshot(ScheduleSpec spec) throws Exception {
        if (backend == null) {
            throw new IOException("this agent cannot take snapshots: " + noBackend);
        }
        KilnMount m = mountOf(spec.role());
        Path mp = m.mountPoint();
        SnapshotBackend.Target target = backend.target(spec.role(), m);
        if (!spec.pre().isEmpty()) {
            HookCommand.Outcome pre = hooks.run("pre", spec.pre(), spec, mp);
            log("pre", spec, pre);
            if (!pre.ok()) {
                throw new IOException(pre.describe() + "; no snapshot was taken");
            }
        }
        Instant thawBy = volumes.freeze(mp, freezeLease, "");
        SnapshotBackend.Taken taken = null;
        boolean held;
        Exception failed = null;
        try {
            taken = backend.create(target);
        } catch (Exception e) {
            failed = e;
        } finally {
            // Whether the freeze held until the call returned, then thaw at once.
            held = volumes.frozenUntil(mp).isPresent();
            try {
                volumes.thaw(mp);
            } catch (IOException e) {
                LOG.error("thawing {} after its snapshot failed: {} (the freeze lease ends it by {})", mp, e.getMessage(), thawBy);
            }
        }
        if (failed != null) {
            throw failed;
        }
        if (!held) {
            backend.abandon(target, taken);
            throw new IOException("the snapshot call returned after the freeze lease of " + Durations.format(freezeLease)
                    + " had ended (the agent thaws at the lease's end), so " + taken.id() + " might not be consistent and was"
                    + " deleted; raise kiln.snapshots.freeze-lease if the call is slow");
        }
        taken = backend.finish(target, taken);
        StringBuilder text = new StringBuilder(taken.id() + " " + taken.state());
        text.append(retain(spec, target, taken));
        if (!spec.post().isEmpty()) {
            HookCommand.Outcome post = hooks.run("post", spec.post(), spec, mp);
            log("post", spec, post);
            if (!post.ok()) {
                text.append("; ").append(post.describe());
            }
        }
        return new Result(taken.id(), text.toString());
    }

    /** Deletes the snapshots schedules took of this volume beyond the newest {@code keep}; says what it did. */
    private String retain(ScheduleSpec spec, SnapshotBackend.Target target, SnapshotBackend.Taken made) {
        if (spec.keep() == 0) {
            return "";
        }
        List<SnapshotBackend.Taken> all;
        try {
            all = new ArrayList<>(backend.list(target));
        } catch (IOException e) {
            return "; retention skipped (" + e.getMessage() + ")";
        }
        if (all.stream().noneMatch(x -> x.id().equals(made.id()))) {
            all.add(made); // EC2 may not list a snapshot for a moment after creating it
        }
        List<SnapshotBackend.Taken> ours = all.stream()
                .filter(x -> x.managed() && x.collection().equals(target.collection()) && !"error".equals(x.state()))
                .sorted(Comparator.comparing(SnapshotBackend.Taken::started).reversed()).toList();
        Set<String> kept = new LinkedHashSet<>();
        kept.add(made.id()); // the newest, whatever the clocks say
        ours.stream().filter(x -> !x.id().equals(made.id())).limit(spec.keep() - 1L).forEach(x -> kept.add(x.id()));
        // While newer ones are pending, the newest completed one is the only one that can be restored.
        ours.stream().filter(x -> "completed".equals(x.state())).findFirst().ifPresent(x -> kept.add(x.id()));
        List<String> deleted = new ArrayList<>();
        List<String> notDeleted = new ArrayList<>();
        for (SnapshotBackend.Taken x : ours) {
            if (kept.contains(x.id())) {
                continue;
            }
            try {
                backend.delete(target, x);
                deleted.add(x.id());
            } catch (IOException | RuntimeException e) {
                notDeleted.add(x.id() + " (" + e.getMessage() + ")");
            }
        }
        return (deleted.isEmpty() ? "" : ", deleted " + String.join(", ", deleted))
                + (notDeleted.isEmpty() ? "" : ", could not delete " + String.join(", ", notDeleted));
    }

    private static void log(String which, ScheduleSpec spec, HookCommand.Outcome o) {
        if (o.ok()) {
            LOG.info("schedule {}: {}{}", spec.role(), o.describe(), o.output().isEmpty() ? "" : "; it said: " + o.output());
        } else {
            LOG.warn("schedule {}: {}{}", spec.role(), o.describe(), o.output().isEmpty() ? "" : "; it said: " + o.output());
        }
    }

    /** Every schedule as protobuf, each with its volume's mount point (empty while it is not mounted). */
    public List<dev.kiln.proto.agent.v1.Schedule> messages() {
        List<dev.kiln.proto.agent.v1.Schedule> out = new ArrayList<>();
        for (ScheduleState s : list()) {
            String mp;
            try {
                mp = mountOf(s.spec().role()).mountPoint().toString();
            } catch (IOException | RuntimeException e) {
                mp = "";
            }
            out.add(ScheduleCodec.schedule(s, mp));
        }
        return out;
    }

    /** The volume Kiln mounted for a role: a non-overlay mount at {@code .../mnt/ROLE}. */
    KilnMount mountOf(String role) throws IOException {
        List<KilnMount> mounted = volumes.kilnMounts();
        return mounted.stream().filter(m -> !m.overlay() && isRoleMount(m.mountPoint(), role)).findFirst()
                .orElseThrow(() -> new VolumeNotFoundException("no volume of role '" + role + "' is mounted by Kiln on this"
                        + " instance (mounted: " + (mounted.stream().filter(m -> !m.overlay()).map(m -> roleOf(m.mountPoint()))
                        .filter(r -> !r.isEmpty()).toList()) + "); a schedule needs a mounted volume of its role"));
    }

    private static boolean isRoleMount(Path mp, String role) {
        return roleOf(mp).equals(role);
    }

    private static String roleOf(Path mp) {
        Path parent = mp.getParent();
        return parent != null && parent.getFileName() != null && parent.getFileName().toString().equals("mnt")
                ? mp.getFileName().toString() : "";
    }

    private void save() throws IOException {
        store.save(new ScheduleStore.Contents(new ArrayList<>(schedules.values()), settingsKey));
    }

    private void saveQuietly() {
        try {
            save();
        } catch (IOException e) {
            LOG.error("cannot save the snapshot schedules in {}: {}", store.file(), e.getMessage());
        }
    }
}
