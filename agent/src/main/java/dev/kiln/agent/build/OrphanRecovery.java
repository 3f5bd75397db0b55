package dev.kiln.agent.build;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.file.Files;
import java.time.Clock;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;

/**
 * Recovers the builds an agent restart cut short: ends the processes they left running and
 * records each unfinished build as {@link BuildState#INTERRUPTED} (tup continues incrementally
 * when it is run again).
 */
final class OrphanRecovery {

    private static final Logger LOG = LoggerFactory.getLogger(OrphanRecovery.class);

    private final BuildStore store;
    private final ProcessLauncher launcher;
    private final Clock clock;

    OrphanRecovery(BuildStore store, ProcessLauncher launcher, Clock clock) {
        this.store = store;
        this.launcher = launcher;
        this.clock = clock;
    }

    /** Every stored record, oldest first, none of them still queued or running. */
    List<BuildRecord> recover() throws IOException {
        List<String> problems = new ArrayList<>();
        List<BuildRecord> loaded = store.loadAll(problems);
        problems.forEach(LOG::warn);
        loaded.sort(Comparator.comparing(BuildRecord::createdAt));
        List<BuildRecord> out = new ArrayList<>();
        for (BuildRecord r : loaded) {
            if (!r.state().ended()) {
                stopOrphans(r.id());
                // The agent stopped while this build ran or waited: say so, durably.
                long size = Files.exists(store.log(r.id())) ? Files.size(store.log(r.id())) : 0;
                r = r.ended(BuildState.INTERRUPTED, clock.instant(), null, size);
                store.save(r);
                LOG.info("build {} was interrupted by an agent restart; run it again to continue", r.id());
            }
            out.add(r);
        }
        return out;
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
}
