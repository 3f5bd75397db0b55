package dev.kiln.controller.local;

import dev.kiln.controller.ExitCodes;
import dev.kiln.controller.KilnException;
import dev.kiln.controller.client.ClientTls;
import dev.kiln.controller.config.KilnPaths;
import dev.kiln.controller.fleet.AgentUserData;
import dev.kiln.controller.fleet.EndedInstance;
import dev.kiln.controller.fleet.Fleet;
import dev.kiln.controller.fleet.FleetSnapshot;
import dev.kiln.controller.fleet.FleetVolume;
import dev.kiln.controller.fleet.InstanceLayout;
import dev.kiln.controller.fleet.ManagedInstance;
import dev.kiln.controller.fleet.StoredVolume;
import dev.kiln.controller.fleet.VolumeSpec;
import dev.kiln.controller.pki.FleetCa;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.StandardCopyOption;
import java.time.Duration;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Comparator;
import java.util.HashSet;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Properties;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;

/**
 * The embedded default provider: instances are kiln-agent processes on this machine, each in its
 * own directory under {@code $KILN_STATE_DIR/fleet/instances}; volumes live under
 * {@code fleet/volumes} and snapshots are copies under {@code fleet/snapshots} (reflinks where
 * the filesystem has them), with EC2's retention rules.
 *
 * <p>As root, a volume is a sparse image file on a loop device, which the agent formats (only
 * when provably blank), mounts, freezes for snapshots and joins by an overlay exactly as on EC2.
 * Otherwise a volume is a plain directory: there is nothing to mount or freeze, and a worker with
 * both sources and builds gets its sources copied into its builds volume's work tree (rsync
 * --update: unchanged files keep their times, so tup sees no change; a pushed change is kept),
 * since an unprivileged user cannot mount an overlay.
 */
public final class LocalProvider implements Fleet {

    /** How long an ended instance's logs stay in its record ({@link EndedRecords#KEEP_LOGS}). */
    public static final Duration KEEP_LOGS = EndedRecords.KEEP_LOGS;

    /**
     * The mark Kiln writes into the {@value LocalSnapshots#SNAPSHOT_FILE} of every snapshot it makes, with the
     * snapshot's own id beside it: only a snapshot whose file says {@code managed=true} and names
     * the directory it sits in is pruned or picked as {@code ROLE:latest}. A directory made by hand
     * (or copied from a Kiln snapshot under another name) is never deleted.
     */
    static final String MANAGED_KEY = dev.kiln.snapshot.LocalSnapshotFormat.MANAGED_KEY;

    private final KilnPaths paths;
    private final Path root;
    private Optional<String> agentJavaOpts = Optional.empty();
    private boolean classArchive = true;
    private Map<String, Object> extraAgentSettings = Map.of();
    private Consumer<String> narrate = s -> System.err.println("kiln: " + s);
    private final LocalSnapshots snapshotStore;
    private final EndedRecords records;
    private final LocalVolumeFates fates;
    private final LocalVolumes volumeStore;
    private final LocalInstances instances;

    /** Root's fleet when its own state directory is closed to the build user (see {@link #fleetRoot}). */
    static final Path SYSTEM_FLEET = Path.of("/var/lib/kiln-fleet");

    public LocalProvider(KilnPaths paths) {
        this.paths = paths;
        this.root = fleetRoot(paths.stateDir(), isRoot());
        this.snapshotStore = new LocalSnapshots(root.resolve("snapshots"), line -> narrate.accept(line));
        this.records = new EndedRecords(root.resolve("ended"), line -> narrate.accept(line));
        this.fates = new LocalVolumeFates(root.resolve("volumes"), snapshotStore);
        this.volumeStore = new LocalVolumes(root.resolve("volumes"));
        this.instances = new LocalInstances(root.resolve("instances"), line -> narrate.accept(line));
    }

    /**
     * Where the instances, volumes and snapshots live: {@code STATE_DIR/fleet}, except for root
     * when a directory above it is closed to other users (root's home is mode 0700 on Debian). As
     * root the agents run builds as the unprivileged build user, who must reach the work trees
     * inside the instances; so root's fleet then lives in {@link #SYSTEM_FLEET} instead. Kiln never
     * changes the permissions of a home directory to make room.
     */
    static Path fleetRoot(Path stateDir, boolean root) {
        Path mine = stateDir.toAbsolutePath().resolve("fleet");
        if (!root) {
            return mine;
        }
        for (Path d = stateDir.toAbsolutePath(); d != null; d = d.getParent()) {
            try {
                if (Files.isDirectory(d) && !Files.getPosixFilePermissions(d).contains(PosixFilePermission.OTHERS_EXECUTE)) {
                    return SYSTEM_FLEET;
                }
            } catch (IOException | UnsupportedOperationException e) {
                return mine;
            }
        }
        return mine;
    }

    static boolean isRoot() {
        try {
            return ((Integer) Files.getAttribute(Path.of("/proc/self"), "unix:uid")) == 0;
        } catch (IOException | UnsupportedOperationException e) {
            return false;
        }
    }

    /** How launched agents' JVMs start: AGENT_JAVA_OPTS (as `kiln up --local`), and whether they use an AppCDS archive. */
    /**
     * Settings added to the {@code kiln} map of the agents this provider launches, e.g.
     * {@code schedules} from a launch template.
     */
    public LocalProvider agentSettings(Map<String, Object> extra) {
        this.extraAgentSettings = Map.copyOf(extra);
        return this;
    }

    public LocalProvider agentJvm(Optional<String> agentJavaOpts, boolean classArchive) {
        this.agentJavaOpts = agentJavaOpts;
        this.classArchive = classArchive;
        return this;
    }

    /**
     * Looks without changing anything: an instance whose agent is gone reads as terminated but is
     * not released nor retired (what {@code kiln prune --dry-run} needs).
     */
    public LocalProvider observeOnly() {
        this.observeOnly = true;
        return this;
    }

    private boolean observeOnly;

    /** Where the fleet keeps its instances, volumes, snapshots and records. */
    public Path root() {
        return root;
    }

    /** Where warnings go (a skipped snapshot directory): the CLI's stderr. */
    public LocalProvider narrate(Consumer<String> narrate) {
        this.narrate = narrate;
        return this;
    }

    /** Whether a name is a local instance id (local-XXXXXXXX). */
    public static boolean isInstanceId(String s) {
        return LocalInstances.isId(s);
    }

    @Override
    public String provider() {
        return "local";
    }

    /**
     * Volumes as loop devices (root, with losetup) or directories.
     *
     * @param setting KILN_LOCAL_VOLUMES: "dirs" forces directories, or null
     */
    public static boolean loopVolumes(String setting) {
        if ("dirs".equals(setting)) {
            return false;
        }
        return isRoot() && LoopDevices.installed();
    }

    /**
     * What to launch locally.
     *
     * @param role      worker, server, or a template name
     * @param ttl       the lease
     * @param maxLife   cap of every extension
     * @param labels    labels
     * @param volumes   volumes to create or restore
     * @param bootBuild whether to start a tup build of the work tree on boot
     * @param profiles  the boot build's profiles (empty: all)
     * @param bootTree  where in the work tree the boot build runs, or null for the work tree itself
     * @param workload  labels, boot script and services for the agent's settings
     * @param forwardPorts loopback ports the owner may forward to (kiln.ssh.forward-ports)
     */
    public record LaunchSpec(String role, Duration ttl, Duration maxLife, Map<String, String> labels, List<VolumeSpec> volumes,
                             boolean bootBuild, List<String> profiles, String bootTree, AgentUserData.Workload workload,
                             List<Integer> forwardPorts) {

        /** Labels only as the fleet's record, no boot script, no services, nothing to forward. */
        public LaunchSpec(String role, Duration ttl, Duration maxLife, Map<String, String> labels, List<VolumeSpec> volumes,
                          boolean bootBuild, List<String> profiles, String bootTree) {
            this(role, ttl, maxLife, labels, volumes, bootBuild, profiles, bootTree, AgentUserData.Workload.NONE, List.of());
        }
    }

    /** Launches an instance: its volumes, its agent process; returns once the agent answers. */
    public ManagedInstance launch(LaunchSpec spec, int maxInstances, boolean loops, FleetCa ca, ClientTls tls, Path agentJar,
                                  Duration wait, Consumer<String> narrate) {
        refuseAtCap(maxInstances);
        // Snapshots are resolved first, so a missing one costs nothing.
        List<Path> from = new ArrayList<>();
        for (VolumeSpec v : spec.volumes()) {
            if (v.latest()) {
                from.add(snapshotDir(latest(v, narrate).id()));
            } else if (v.snapshotId() != null) {
                Path s = snapshotDir(v.snapshotId());
                if (!Files.isDirectory(s)) {
                    throw new KilnException(ExitCodes.NOT_FOUND, "no local snapshot " + v.snapshotId() + " (see `kiln snapshots`)");
                }
                from.add(s);
            } else {
                from.add(null);
            }
        }
        for (int i = 0; i < from.size(); i++) {
            LocalSnapshots.refuseOtherKind(from.get(i), spec.volumes().get(i).role(), loops);
        }
        for (VolumeSpec v : spec.volumes()) {
            if (v.existing()) {
                refuseUnattachable(v, loops);
            }
        }
        String id = "local-" + hex(4);
        Path dir = instanceDir(id);
        Instant now = Instant.now().truncatedTo(ChronoUnit.SECONDS);
        // The loop devices this launch attached, until its agent runs (then they are the instance's).
        List<String> devices = new ArrayList<>();
        try {
            Files.createDirectories(dir);
            // Until instance.properties exists, this file tells `kiln prune` the launch is under way.
            Files.writeString(dir.resolve(LocalInstances.LAUNCHER_FILE), ProcessHandle.current().pid() + " " + now + "\n");
            List<InstanceLayout.Volume> attached = new ArrayList<>();
            Map<Path, Properties> created = new java.util.LinkedHashMap<>();
            Properties p = new Properties();
            for (int i = 0; i < spec.volumes().size(); i++) {
                VolumeSpec v = spec.volumes().get(i);
                LocalVolumes.Attached a = v.existing() ? volumeStore.attach(v, id, dir, loops, devices)
                        : volumeStore.create(v, id, spec.role(), dir, from.get(i), loops, now, devices, narrate);
                attached.add(a.layout());
                created.put(a.dir(), a.record());
                if (a.device() != null) {
                    p.setProperty("volume." + i + ".device", a.device());
                }
                p.setProperty("volume." + i + ".id", a.id());
                p.setProperty("volume." + i + ".role", v.role());
                p.setProperty("volume." + i + ".collection", a.collection());
            }
            InstanceLayout layout = InstanceLayout.plan(dir.toString(), spec.role(), attached);
            if (!loops) {
                layout = LocalVolumes.withoutMounts(dir, layout, narrate);
            }
            // What each volume looks like before its agent runs: unchanged at the end, it holds nothing new.
            for (Map.Entry<Path, Properties> v : created.entrySet()) {
                String stamp = VolumeStamp.of(v.getKey());
                if (stamp != null) {
                    v.getValue().setProperty("attach-stamp", stamp);
                    RecordFiles.store(v.getValue(), v.getKey().resolve(LocalVolumes.RECORD));
                }
            }
            LocalAgent agent = new LocalAgent(paths, dir).javaOptions(agentJavaOpts).classArchive(classArchive);
            agent.writeTls(ca);
            int port = LocalAgent.freeLoopbackPort();
            String keys = paths.sshPublicKey().toString();
            Map<String, Object> settings = agent.settings(port);
            settings.put("instance-id", id);
            settings.put("snapshots", LocalAgentConfig.snapshotSettings(root.resolve("snapshots")));
            settings.putAll(extraAgentSettings);
            settings.putAll(AgentUserData.sections(spec.ttl(), spec.maxLife(), layout,
                    new AgentUserData.Ssh("127.0.0.1", 0, keys, keys, spec.forwardPorts()), spec.bootBuild() && layout.workTree() != null
                            ? new AgentUserData.BootBuild(spec.bootTree() == null ? layout.workTree()
                            : layout.workTree() + "/" + spec.bootTree(), spec.profiles(), List.of()) : null));
            settings.putAll(AgentUserData.workload(spec.workload()));
            String yaml = AgentUserData.write("kiln-agent settings, written by `kiln launch` (local provider)", settings);
            p.setProperty("role", spec.role());
            p.setProperty("launched", now.toString());
            if (spec.ttl() != null) {
                p.setProperty("expires-at", now.plus(spec.ttl()).toString()); // none: forever
            }
            p.setProperty("grpc-port", Integer.toString(port));
            p.setProperty("volumes", Integer.toString(spec.volumes().size()));
            // Pending until its agent answers, with this launch's pid: another kiln command that
            // reads the instance meanwhile (a concurrent launch's cap check, kiln ls) must not take
            // the missing agent for a dead one and release the instance's loop devices.
            p.setProperty("state", "pending");
            p.setProperty("launcher-pid", Long.toString(ProcessHandle.current().pid()));
            if (layout.workTree() != null) {
                p.setProperty("work-tree", layout.workTree());
            }
            new TreeMap<>(spec.labels()).forEach((k, v) -> p.setProperty("label." + k, v));
            instances.store(id, p);
            try {
                agent.start(yaml, port, agentJar, tls, wait, narrate);
                devices.clear(); // its agent has mounted them; terminate or the lease releases them
                p.setProperty("state", "running");
                p.remove("launcher-pid");
                instances.store(id, p);
                if (layout.sources() != null) {
                    narrate.accept(workTreeHint(id, layout.workTree()));
                } else if (layout.outputs() != null) {
                    narrate.accept("serves " + layout.outputs() + " as /outputs over SSH (`kiln pull " + id + " DEST --path /outputs/...`)");
                }
            } catch (RuntimeException e) {
                agent.down(Duration.ofSeconds(10));
                p.setProperty("ending", "launch failed");
                release(id, p);
                devices.clear();
                if (e instanceof KilnException k) {
                    throw new KilnException(k.exitCode(), k.getMessage() + "\n(" + id + " is terminated; "
                            + ended(id).map(r -> "its agent's log is kept in " + r.logs() + "; " + String.join("; ", r.volumes()))
                            .orElse("its volumes are kept in " + root.resolve("volumes")) + ")", k);
                }
                throw e;
            }
            return get(id);
        } catch (IOException e) {
            try {
                Files.deleteIfExists(dir.resolve(LocalInstances.LAUNCHER_FILE)); // this launch is over: `kiln prune` may clear what it left
            } catch (IOException ignored) {
                // prune then takes it for a launch under way until this process has exited
            }
            throw new KilnException(ExitCodes.FAILURE, "cannot launch a local " + spec.role() + " in " + dir + ": " + e.getMessage()
                    + (devices.isEmpty() ? "" : "\n(its loop devices are detached; its volumes are kept in " + root.resolve("volumes")
                    + ")") + "\n(`kiln prune` clears what this launch left, keeping any volume whose data is not safe)", e);
        } finally {
            // Any failure before the agent runs (a copy that fails, a full disk, an interrupt)
            // leaves no loop device attached to an image nobody uses.
            for (String device : devices) {
                LoopDevices.detachQuietly(device);
            }
        }
    }

    /**
     * The snapshot {@code ROLE:latest} restores in the volume's collection ({@link Fleet#resolveLatest}).
     * An unmarked one (made by hand, or by a Kiln from before the mark) is never picked: which of
     * them holds what is a guess; when nothing else is found, they are named.
     */
    private FleetSnapshot latest(VolumeSpec volume, Consumer<String> narrate) {
        try {
            return resolveLatest(volume, narrate);
        } catch (KilnException e) {
            List<String> unmarked = snapshots(volume.role()).stream().filter(s -> !s.managed()).map(FleetSnapshot::id).toList();
            if (e.exitCode() != ExitCodes.NOT_FOUND || unmarked.isEmpty()) {
                throw e;
            }
            throw new KilnException(ExitCodes.NOT_FOUND, e.getMessage() + " (" + String.join(", ", unmarked)
                    + (unmarked.size() == 1 ? " carries" : " carry") + " no Kiln mark, so `latest` never picks "
                    + (unmarked.size() == 1 ? "it" : "them") + "; restore one by its id: " + volume.role() + ":SNAPSHOT_ID)");
        }
    }

    /** How to use an instance's work tree, for the launch's output. */
    public static String workTreeHint(String id, String workTree) {
        return "work tree " + workTree + ": `kiln push DIR " + id + "` uploads DIR as " + workTree + "/DIR's name;"
                + " `kiln build --agent " + id + " NAME` builds " + workTree + "/NAME";
    }

    @Override
    public List<ManagedInstance> list(List<String> states) {
        List<ManagedInstance> out = new ArrayList<>();
        for (String id : instances.ids()) {
            if (!instances.exists(id)) {
                continue; // retired since it was listed
            }
            ManagedInstance m = read(id);
            boolean wanted = states.isEmpty() ? !m.state().equals("terminated") : states.contains(m.state());
            if (wanted) {
                out.add(m);
            }
        }
        if (states.contains("terminated")) {
            Set<String> listed = new HashSet<>(out.stream().map(ManagedInstance::id).toList());
            ended().stream().filter(r -> !listed.contains(r.id())).forEach(r -> out.add(new ManagedInstance(r.id(), r.role(),
                    r.labels(), "terminated", null, null, null, "localhost", 0, r.launched())));
        }
        out.sort(Comparator.comparing(ManagedInstance::launchTime));
        return out;
    }

    @Override
    public ManagedInstance get(String id) {
        if (!isInstanceId(id) || !instances.exists(id)) {
            Optional<EndedInstance> ended = isInstanceId(id) ? ended(id) : Optional.empty();
            if (ended.isPresent()) {
                throw new KilnException(ExitCodes.NOT_FOUND, ended.get().summary() + "; nothing runs there any more"
                        + " (`kiln ls --all` lists ended instances; `kiln launch` starts a new one)");
            }
            throw new KilnException(ExitCodes.NOT_FOUND, "no local instance " + id + " (see `kiln ls --all`)");
        }
        return read(id);
    }

    @Override
    public Optional<EndedInstance> ended(String id) {
        return records.read(id);
    }

    @Override
    public List<EndedInstance> ended() {
        return records.list();
    }

    /** {@link EndedRecords#log}. */
    public Optional<Path> endedLog(String id, String build) {
        return records.log(id, build);
    }

    /** Reads an instance; one whose agent is gone is terminated now (its mounts and loop devices released). */
    private ManagedInstance read(String id) {
        Path dir = instanceDir(id);
        Properties p = instances.load(id);
        String state = p.getProperty("state", "running");
        boolean gone = switch (state) {
            case "running" -> new LocalAgent(paths, dir).process().isEmpty();
            case "pending" -> !LocalInstances.launching(p) && new LocalAgent(paths, dir).process().isEmpty();
            // Ended, but its directory is still here (a retirement cut short, or a Kiln before records).
            case "terminated" -> true;
            default -> false;
        };
        if (gone) {
            if (!observeOnly) {
                release(id, p);
            }
            state = "terminated";
        }
        return instances.instance(id, p, state);
    }

    /** After the agent is gone: unmount what is still mounted under the instance, detach its loop devices. */
    private void release(String id, Properties p) {
        Path dir = instanceDir(id);
        try {
            List<String> mine = LocalInstances.mountsUnder(dir);
            Collections.reverse(mine);
            for (String mp : mine) {
                LocalTools.run("umount", mp);
            }
            int n = Integer.parseInt(p.getProperty("volumes", "0"));
            for (int i = 0; i < n; i++) {
                // Only the loop devices over this volume's image: the recorded name may since be another's.
                if (p.getProperty("volume." + i + ".device") != null) {
                    LoopDevices.detachAll(volumeDir(p.getProperty("volume." + i + ".id")).resolve("volume.img"));
                }
            }
            if (!p.getProperty("state", "").equals("terminated")) {
                if (p.getProperty("state", "").equals("pending") && p.getProperty("ending") == null) {
                    p.setProperty("ending", "its `kiln launch` ended before its agent answered");
                }
                p.setProperty("state", "terminated");
                p.setProperty("ended", EndedRecords.endedAt(dir).toString());
                p.setProperty("how", EndedRecords.how(p, dir));
                instances.store(id, p);
            }
            retire(id, p);
        } catch (IOException | KilnException e) {
            if (!Files.exists(dir) && records.has(id)) {
                return; // another kiln command retired it meanwhile
            }
            narrate.accept(id + " ended, but its directory " + dir + " could not be cleared yet (" + e.getMessage()
                    + "); the next kiln command tries again, or `kiln prune`");
        }
    }

    /**
     * Moves an ended instance out of the store: its record (how it ended, what became of each
     * volume, its logs) goes to {@code fleet/ended/ID}, each volume is deleted or kept by
     * {@link VolumeFate}, and its directory is removed. Each step can be repeated: a retirement cut
     * short is finished by the next command that reads the instance.
     */
    private void retire(String id, Properties p) throws IOException {
        Path dir = instanceDir(id);
        List<String> mounted = LocalInstances.mountsUnder(dir);
        if (!mounted.isEmpty()) {
            throw new IOException("still mounted: " + String.join(", ", mounted));
        }
        int n = Integer.parseInt(p.getProperty("volumes", "0"));
        List<VolumeFate.Fate> fates = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            fates.add(fate(p.getProperty("volume." + i + ".id"), p.getProperty("volume." + i + ".role", "")));
        }
        if (!records.has(id)) {
            records.write(id, p, dir, fates.stream().map(VolumeFate.Fate::describe).toList());
        }
        for (VolumeFate.Fate f : fates) {
            apply(f, id);
        }
        Path gone = dir.resolveSibling("." + id + ".deleting");
        Files.move(dir, gone, StandardCopyOption.ATOMIC_MOVE);
        LocalTools.run("rm", "-rf", "--one-file-system", gone.toString());
        records.trim(Instant.now(), false);
    }

    /** {@link LocalVolumeFates#fate}. */
    VolumeFate.Fate fate(String volumeId, String role) {
        return fates.fate(volumeId, role);
    }

    /** {@link LocalVolumeFates#apply}. */
    void apply(VolumeFate.Fate f, String instanceId) throws IOException {
        fates.apply(f, instanceId);
    }

    /** {@link EndedRecords#trim(Instant, boolean)}. */
    List<String> trimRecords(Instant now, boolean dryRun) {
        return records.trim(now, dryRun);
    }

    /** Records how a command is about to end an instance, for its record. */
    public void markEnding(String id, String how) {
        instances.markEnding(id, how);
    }

    /** {@link LocalVolumes#refuseUnattachable}, with this fleet's instances as the holders. */
    private void refuseUnattachable(VolumeSpec v, boolean loops) {
        volumeStore.refuseUnattachable(v, loops, this::holder);
    }

    /** The pending or running instance a volume is attached to, or null when it is available. */
    String holder(String volumeId) {
        String instance = volumeStore.recordedInstance(volumeId);
        if (instance == null || !isInstanceId(instance) || !Files.isDirectory(instanceDir(instance))) {
            return null;
        }
        if (!instances.exists(instance)) {
            return instance; // its launch is under way
        }
        // Reading it retires it when its agent is gone, which marks its volumes available.
        return read(instance).state().equals("terminated") ? null : instance;
    }

    @Override
    public List<StoredVolume> storedVolumes() {
        list(List.of()); // retires instances whose agent is gone, so their volumes read as available
        return volumeStore.list(this::holder);
    }

    @Override
    public String deleteVolume(String volumeId, boolean force) {
        volumeStore.requireExists(volumeId);
        list(List.of());
        return volumeStore.delete(volumeId, force, holder(volumeId));
    }

    @Override
    public List<String> reapVolumes(boolean dryRun) {
        LocalProvider looking = dryRun ? new LocalProvider(paths).observeOnly().narrate(narrate) : this;
        return new LocalPrune(looking, dryRun).volumesOnly().stream().map(LocalPrune.Line::text).toList();
    }

    @Override
    public List<FleetVolume> volumes(String instanceId) {
        ManagedInstance m = get(instanceId);
        Properties p = instances.load(m.id());
        List<FleetVolume> out = new ArrayList<>();
        int n = Integer.parseInt(p.getProperty("volumes", "0"));
        for (int i = 0; i < n; i++) {
            String role = p.getProperty("volume." + i + ".role");
            boolean device = p.getProperty("volume." + i + ".device") != null;
            // A loop device is mounted (and frozen for snapshots) at mnt/ROLE; a directory has nothing to freeze ("").
            out.add(new FleetVolume(p.getProperty("volume." + i + ".id"), role,
                    device ? instanceDir(m.id()).resolve("mnt").resolve(role).toString() : "",
                    p.getProperty("volume." + i + ".collection", "")));
        }
        return out;
    }

    /**
     * One of a local instance's own volumes.
     *
     * @param id      vol-local-...
     * @param role    its role
     * @param device  its loop device, or null for a directory volume
     * @param path    where its data is: the mount point of a loop device, the directory itself otherwise
     * @param sizeGiB its size, or 0 when unknown
     */
    public record OwnVolume(String id, String role, String device, String path, long sizeGiB) {
    }

    /** The instance's own volumes, to tell them from the rest of the host's block devices. */
    public List<OwnVolume> ownVolumes(String instanceId) {
        ManagedInstance m = get(instanceId);
        Properties p = instances.load(m.id());
        List<OwnVolume> out = new ArrayList<>();
        int n = Integer.parseInt(p.getProperty("volumes", "0"));
        for (int i = 0; i < n; i++) {
            String id = p.getProperty("volume." + i + ".id");
            String role = p.getProperty("volume." + i + ".role");
            String device = p.getProperty("volume." + i + ".device");
            long size = volumeStore.sizeGiB(id);
            out.add(new OwnVolume(id, role, device, device != null ? instanceDir(m.id()).resolve("mnt").resolve(role).toString()
                    : volumeDir(id).resolve("data").toString(), size));
        }
        return out;
    }

    @Override
    public String workTree(String instanceId) {
        get(instanceId);
        return instances.load(instanceId).getProperty("work-tree");
    }

    @Override
    public FleetSnapshot createSnapshot(FleetVolume volume, ManagedInstance instance, String buildId) {
        return snapshotStore.create(volume, volumeDir(volume.id()), instance, buildId);
    }

    @Override
    public List<FleetSnapshot> snapshots(String volumeRole) {
        return snapshotStore.list(volumeRole);
    }

    @Override
    public void deleteSnapshot(FleetSnapshot s) {
        snapshotStore.delete(s);
    }

    @Override
    public void terminate(List<String> ids) {
        terminate(ids, "terminated with --force (TERM/KILL of its agent, no drain)");
    }

    @Override
    public void terminate(List<String> ids, String how) {
        for (String id : ids) {
            get(id);
            markEnding(id, how);
            new LocalAgent(paths, instanceDir(id)).down(Duration.ofSeconds(30));
            read(id); // releases mounts and loop devices, and retires it
        }
    }

    /** Rewrites the instance's expires-at, which reap reads, to the deadline its agent now holds. */
    @Override
    public void recordDeadline(String id, Instant deadline) {
        get(id);
        instances.recordDeadline(id, deadline);
    }

    /** Waits until the instance's agent has exited (after a Shutdown), then releases what it held. */
    public ManagedInstance awaitTerminated(String id, Duration wait) {
        Optional<ProcessHandle> p = new LocalAgent(paths, instanceDir(id)).process();
        if (p.isPresent()) {
            try {
                p.get().onExit().get(wait.toMillis(), TimeUnit.MILLISECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new KilnException(ExitCodes.FAILURE, "interrupted while waiting for the agent of " + id + " (pid "
                        + p.get().pid() + ") to drain; it drains on without kiln (`kiln ls` shows when it has ended)", e);
            } catch (Exception e) {
                throw new KilnException(ExitCodes.TIMEOUT, "the agent of " + id + " (pid " + p.get().pid()
                        + ") is still draining after " + wait.toSeconds() + "s; `kiln terminate " + id + " --force` stops it");
            }
        }
        return read(id);
    }

    /** The agent's log of a local instance. */
    public Path logFile(String id) {
        return new LocalAgent(paths, instanceDir(id)).logFile();
    }

    Path instanceDir(String id) {
        return instances.dir(id);
    }

    Path volumeDir(String id) {
        return volumeStore.dir(id);
    }

    Path snapshotDir(String id) {
        return snapshotStore.dir(id);
    }

    static String hex(int bytes) {
        byte[] b = new byte[bytes];
        ThreadLocalRandom.current().nextBytes(b);
        return HexFormat.of().formatHex(b);
    }
}
