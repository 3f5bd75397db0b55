package dev.kiln.controller.local;

import dev.kiln.controller.fleet.EndedInstance;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Properties;
import java.util.Set;
import java.util.stream.Stream;

/**
 * {@code kiln prune}: clears what crashes left in the local fleet's store, by the same rules the
 * fleet follows when an instance ends: instance directories whose agent is gone (retired with
 * their record), loop devices over the fleet's images that no running instance holds, volumes
 * whose instance is gone (deleted only by {@link VolumeFate}'s data-safe rule, otherwise kept and
 * named), half-deleted leftovers, and logs and records past their time. Every entry it finds is
 * reported: removed (or would be, with --dry-run), kept and why, or left and why.
 */
public final class LocalPrune {

    /** One line of the report, and whether it is a failure. */
    public record Line(String text, boolean failed) {
    }

    private final LocalProvider fleet;
    private final boolean dryRun;
    private final List<Line> report = new ArrayList<>();
    /** Volumes a retirement in this run already reported. */
    private final Set<String> reported = new HashSet<>();

    /**
     * @param fleet  the provider to clean; with {@code dryRun} it must be {@link LocalProvider#observeOnly}
     * @param dryRun only say what would be removed
     */
    public LocalPrune(LocalProvider fleet, boolean dryRun) {
        this.fleet = fleet;
        this.dryRun = dryRun;
    }

    /** Runs, returning the report in the order things were found. */
    public List<Line> run() {
        Set<String> live = instances();
        loops(live);
        volumes(live);
        leftovers(fleet.root().resolve("ended"), ".partial", "a record cut short");
        leftovers(fleet.root().resolve("snapshots"), ".deleting", "a snapshot deletion cut short");
        partialSnapshots();
        for (String dropped : fleet.trimRecords(Instant.now(), dryRun)) {
            say((dryRun ? "would remove " : "removed ") + dropped);
        }
        return report;
    }

    /**
     * Only the volumes whose instance is gone ({@code kiln reap}): instances whose agent is gone are
     * retired first (their volumes follow the rule then), then every other volume no instance holds.
     */
    public List<Line> volumesOnly() {
        volumes(instances());
        return report;
    }

    private String removed() {
        return dryRun ? "would remove " : "removed ";
    }

    private void say(String text) {
        report.add(new Line(text, false));
    }

    private void fail(String text) {
        report.add(new Line(text, true));
    }

    /** Instance directories: retires those whose agent is gone; returns the ids of pending and running ones. */
    private Set<String> instances() {
        Set<String> live = new HashSet<>();
        Path dir = fleet.root().resolve("instances");
        for (Path p : entries(dir)) {
            String name = p.getFileName().toString();
            if (name.startsWith(".") && name.endsWith(".deleting")) {
                remove(p, "an instance directory whose deletion was cut short");
                continue;
            }
            if (!LocalProvider.isInstanceId(name)) {
                say("left " + p + ": not an instance directory of Kiln's; remove it yourself if it is not needed");
                continue;
            }
            if (!Files.isRegularFile(p.resolve(LocalInstances.RECORD), LinkOption.NOFOLLOW_LINKS)) {
                if (launching(p)) {
                    live.add(name);
                    say("left " + name + ": its `kiln launch` is still running");
                    continue;
                }
                try {
                    List<String> mounted = LocalInstances.mountsUnder(p);
                    if (!mounted.isEmpty()) {
                        fail("left " + p + ": a launch that never finished, but " + String.join(", ", mounted)
                                + " is still mounted there; unmount it and run `kiln prune` again");
                        continue;
                    }
                } catch (IOException e) {
                    fail("left " + p + ": cannot read the mount table (" + e.getMessage() + ")");
                    continue;
                }
                remove(p, "the directory of a launch that never finished (" + name + ")");
                continue;
            }
            String state;
            try {
                state = fleet.get(name).state();
            } catch (RuntimeException e) {
                // get() retired it, or it cannot be read: either way the record (or the error) says
                Optional<EndedInstance> r = fleet.ended(name);
                if (r.isPresent()) {
                    retired(r.get());
                } else {
                    fail("left " + p + ": " + e.getMessage());
                }
                continue;
            }
            if (!state.equals("terminated")) {
                live.add(name);
                continue;
            }
            if (dryRun) {
                say("would retire " + name + ": its agent is gone (record kept for `kiln ls --all`; its volumes follow"
                        + " the data-safe rule, see below)");
                continue;
            }
            Optional<EndedInstance> r = fleet.ended(name);
            if (r.isPresent() && !Files.exists(p)) {
                retired(r.get());
            } else {
                fail("left " + p + ": its agent is gone but its directory could not be cleared; see the message above");
            }
        }
        return live;
    }

    private void retired(EndedInstance r) {
        say("retired " + r.summary() + "; record kept for `kiln ls --all`" + (r.logs() == null ? "" : ", logs in " + r.logs()));
        r.volumes().forEach(v -> {
            say("  " + v);
            reported.add(v.split(" ")[0]);
        });
    }

    /** Whether the `kiln launch` that made this directory still runs (its launcher file names a live pid that started before). */
    private static boolean launching(Path instanceDir) {
        try {
            String[] f = Files.readString(instanceDir.resolve(LocalInstances.LAUNCHER_FILE)).strip().split(" ");
            Properties p = new Properties();
            p.setProperty("launcher-pid", f[0]);
            p.setProperty("launched", f[1]);
            return LocalInstances.launching(p);
        } catch (IOException | RuntimeException e) {
            return false;
        }
    }

    /** Loop devices over the fleet's volume images that no pending or running instance holds. */
    private void loops(Set<String> live) {
        if (!LoopDevices.installed()) {
            return;
        }
        Map<String, String> attached;
        try {
            attached = LoopDevices.all();
        } catch (IOException e) {
            return; // no loop support, or not allowed to list: nothing of the fleet's can be attached
        }
        Path volumes = fleet.root().resolve("volumes");
        for (Map.Entry<String, String> loop : attached.entrySet()) {
            String device = loop.getKey();
            String back = loop.getValue();
            if (!back.startsWith(volumes + "/")) {
                continue; // not the fleet's: never touched
            }
            String volumeId = Path.of(back.substring(volumes.toString().length() + 1)).getName(0).toString()
                    .replaceFirst("^\\.(.*)\\.deleting$", "$1");
            if (heldByLive(volumeId, live)) {
                continue;
            }
            String mountedAt = mountPointOf(device);
            if (mountedAt != null) {
                fail("left " + device + " (over " + back + "): it is mounted at " + mountedAt
                        + ", though no running instance holds it; unmount it and run `kiln prune` again");
                continue;
            }
            if (dryRun) {
                say("would detach " + device + " (over " + back + "): no running instance holds it");
                continue;
            }
            try {
                LoopDevices.detach(device);
                say("detached " + device + " (over " + back + "): no running instance held it");
            } catch (IOException e) {
                fail("left " + device + " (over " + back + "): " + e.getMessage());
            }
        }
    }

    private boolean heldByLive(String volumeId, Set<String> live) {
        Path props = fleet.volumeDir(volumeId).resolve(LocalVolumes.RECORD);
        if (!Files.isRegularFile(props)) {
            return false;
        }
        Properties vp = load(props);
        String instance = vp.getProperty("instance");
        if (instance != null) {
            return live.contains(instance);
        }
        // A volume from a Kiln before volumes named their instance: look in the live instances' records.
        for (String id : live) {
            Path f = fleet.instanceDir(id).resolve(LocalInstances.RECORD);
            if (Files.isRegularFile(f) && load(f).containsValue(volumeId)) {
                return true;
            }
        }
        return false;
    }

    private static String mountPointOf(String device) {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/self/mountinfo"))) {
                String[] after = line.substring(line.indexOf(" - ") + 3).split(" ");
                if (after.length > 1 && after[1].equals(device)) {
                    return line.split(" ")[4].replace("\\040", " ");
                }
            }
        } catch (IOException e) {
            return "(unknown: " + e.getMessage() + ")";
        }
        return null;
    }

    /** Volumes no pending or running instance holds. */
    private void volumes(Set<String> live) {
        for (Path p : entries(fleet.root().resolve("volumes"))) {
            String name = p.getFileName().toString();
            if (name.startsWith(".") && name.endsWith(".deleting")) {
                if (LoopDevices.over(p.resolve("volume.img")).isEmpty()) {
                    remove(p, "a volume whose deletion was cut short");
                }
                continue;
            }
            if (!name.startsWith("vol-local-")) {
                say("left " + p + ": not a volume of Kiln's; remove it yourself if it is not needed");
                continue;
            }
            if (heldByLive(name, live) || reported.contains(name)) {
                continue;
            }
            Path props = p.resolve(LocalVolumes.RECORD);
            Properties vp = Files.isRegularFile(props) ? load(props) : new Properties();
            String instance = vp.getProperty("instance");
            if (instance != null && LocalProvider.isInstanceId(instance)
                    && !Files.exists(fleet.instanceDir(instance).resolve(LocalInstances.RECORD))
                    && launching(fleet.instanceDir(instance))) {
                say("left " + name + ": its `kiln launch` is still running");
                continue;
            }
            // Kept ones too: what kept one (a loop device since detached) may have changed.
            VolumeFate.Fate f = fleet.fate(name, vp.getProperty("role", ""));
            if (dryRun) {
                say((f.delete() ? "would delete " : "would keep ") + f.describe().replaceFirst(": (deleted|kept in [^:]*): ", ": ")
                        + (f.delete() ? "" : " (in " + p + ")"));
                continue;
            }
            try {
                fleet.apply(f, null);
                say(f.describe() + (f.delete() ? "" : "; once you no longer need it: kiln volume rm " + name));
            } catch (IOException e) {
                fail("left " + p + ": " + e.getMessage());
            }
        }
    }

    private void leftovers(Path dir, String suffix, String what) {
        for (Path p : entries(dir)) {
            String name = p.getFileName().toString();
            if (name.startsWith(".") && name.endsWith(suffix)) {
                remove(p, what);
            }
        }
    }

    /** A snapshot being copied (or one a crash cut short) is never removed: its `kiln snapshot` may still run. */
    private void partialSnapshots() {
        for (Path p : entries(fleet.root().resolve("snapshots"))) {
            String name = p.getFileName().toString();
            if (name.startsWith(".") && name.endsWith(".partial")) {
                say("left " + p + ": a snapshot being copied, or one a crash cut short; remove it yourself when no"
                        + " `kiln snapshot` runs: rm -r " + p);
            }
        }
    }

    private void remove(Path p, String what) {
        if (dryRun) {
            say(removed() + p + ": " + what);
            return;
        }
        try {
            LocalTools.run("rm", "-rf", "--one-file-system", p.toString());
            say(removed() + p + ": " + what);
        } catch (IOException e) {
            fail("left " + p + ": " + what + ", but it cannot be removed: " + e.getMessage());
        }
    }

    private static List<Path> entries(Path dir) {
        if (!Files.isDirectory(dir)) {
            return List.of();
        }
        try (Stream<Path> all = Files.list(dir)) {
            return all.sorted().toList();
        } catch (IOException e) {
            return List.of();
        }
    }

    private static Properties load(Path file) {
        Properties p = new Properties();
        try (var r = Files.newBufferedReader(file)) {
            p.load(r);
        } catch (IOException e) {
            // unreadable: treated as empty, so nothing is deleted on its word
        }
        return p;
    }
}
