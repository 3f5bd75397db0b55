package dev.kiln.agent.volume;

import dev.kiln.os.OsCommand;
import dev.kiln.agent.build.BuildUser;
import dev.kiln.testkit.LoopDevice;
import dev.kiln.testkit.Prerequisites;
import dev.kiln.testkit.UnreadableDevice;

import java.io.IOException;
import java.io.InputStream;
import java.lang.reflect.Proxy;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HexFormat;
import java.util.List;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;

/**
 * Real loop devices for volume tests, a fake sysfs tree that shows only them, and clean-up of
 * every mount, freeze and device the test made, even when it fails. Never touches anything else.
 */
final class Fixture implements AutoCloseable {

    static final long MIB = 1L << 20;

    final Path dir;
    /** A sysfs root whose block/ lists only this test's devices. */
    final Path sys;
    final Path state;
    private final List<AutoCloseable> devices = new ArrayList<>();
    private final List<String> calls = Collections.synchronizedList(new ArrayList<>());
    private final ScheduledExecutorService leases = Executors.newSingleThreadScheduledExecutor(r -> {
        Thread t = new Thread(r, "test-freeze-lease");
        t.setDaemon(true);
        return t;
    });
    private Owner owner;
    /** The bound on reading a whole device for zeros, for services made after it is set. */
    Duration zeroReadTimeout = Duration.ofHours(1);
    /** The clock that bound is measured with, for services made after it is set. */
    Clock proverClock = Clock.systemUTC();

    Fixture(Path dir) throws IOException {
        Prerequisites.requireRoot("loop devices, mkfs and mount");
        for (String tool : List.of("blkid", "wipefs", "blockdev", "mkfs.ext4", "mkfs.xfs", "fsck.ext4", "resize2fs",
                "xfs_growfs", "fsfreeze", "mount", "umount", "sync")) {
            Prerequisites.requireCommand(tool, "apt-get install util-linux e2fsprogs xfsprogs coreutils mount");
        }
        this.dir = dir;
        this.sys = Files.createDirectories(dir.resolve("sys/block"));
        this.state = Files.createDirectories(dir.resolve("state"));
    }

    /** A loop device, shown in the fake sysfs. */
    LoopDevice loop(long bytes) throws IOException {
        LoopDevice d = LoopDevice.create(dir, bytes);
        devices.add(d);
        showInSysfs(d.device());
        return d;
    }

    /**
     * A loop device over a file whose every byte was written as a zero (no holes, so the holes
     * proof does not apply: as with a device that is not a loop device), shown in the fake sysfs.
     */
    LoopDevice loopWithoutHoles(long bytes) throws IOException {
        Path file = Files.createTempFile(dir, "written-", ".img");
        try (java.nio.channels.FileChannel ch = java.nio.channels.FileChannel.open(file,
                java.nio.file.StandardOpenOption.WRITE)) {
            java.nio.ByteBuffer zeros = java.nio.ByteBuffer.allocate((int) MIB);
            for (long done = 0; done < bytes; done += MIB) {
                zeros.clear().limit((int) Math.min(MIB, bytes - done));
                while (zeros.hasRemaining()) {
                    ch.write(zeros, done + zeros.position());
                }
            }
            ch.force(true);
        }
        LoopDevice d = LoopDevice.attach(file);
        devices.add(d);
        showInSysfs(d.device());
        return d;
    }

    /** A loop device over an existing file (left in place at the end), shown in the fake sysfs. */
    LoopDevice loopOver(Path file) throws IOException {
        LoopDevice d = LoopDevice.attach(file);
        devices.add(d);
        showInSysfs(d.device());
        return d;
    }

    /** A device whose reads fail, shown in the fake sysfs. */
    UnreadableDevice unreadable(long bytes) throws IOException {
        UnreadableDevice d = UnreadableDevice.create(dir, bytes);
        devices.add(d);
        showInSysfs(d.device());
        return d;
    }

    /** Shows the device in the fake sysfs as it is (a loop device: no EBS identity). */
    void showInSysfs(Path device) throws IOException {
        String name = device.getFileName().toString();
        Files.createSymbolicLink(sys.resolve(name), Path.of("/sys/class/block", name).toRealPath());
    }

    /** Shows the device in the fake sysfs as an EBS volume: the NVMe model and serial of volumeId. */
    void showAsEbs(Path device, String volumeId) throws IOException {
        String name = device.getFileName().toString();
        Path real = Path.of("/sys/class/block", name).toRealPath();
        Files.deleteIfExists(sys.resolve(name));
        Path d = Files.createDirectories(sys.resolve(name).resolve("device"));
        Files.writeString(sys.resolve(name).resolve("dev"), Files.readString(real.resolve("dev")));
        Files.writeString(sys.resolve(name).resolve("size"), Files.readString(real.resolve("size")));
        Files.writeString(d.resolve("model"), SysfsVolumes.EBS_MODEL + "                      \n");
        Files.writeString(d.resolve("serial"), volumeId.replace("-", "") + "\n");
    }

    /** The unprivileged build user's uid and gid (it owns new filesystems). */
    Owner owner() {
        if (owner == null) {
            boolean exists;
            try {
                BuildUser.resolve("kiln");
                exists = true;
            } catch (IllegalStateException e) {
                exists = false;
            }
            Prerequisites.require("the unprivileged build user 'kiln'", exists,
                    "useradd --system --create-home kiln (bash .ci/install does it)");
            BuildUser u = BuildUser.resolve("kiln");
            owner = new Owner(u.uid(), u.gid());
        }
        return owner;
    }

    /**
     * Runs right before each mount, to put a change of the test's at the worst moment for the
     * agent (between its checks and the kernel's mount), which no real race hits reliably.
     */
    volatile Runnable beforeMount = () -> { };

    /** The real tools, with every call's method name recorded (to prove what was not called). */
    DiskTools tools() {
        DiskTools real = new OsDiskTools();
        return (DiskTools) Proxy.newProxyInstance(DiskTools.class.getClassLoader(), new Class<?>[]{DiskTools.class},
                (proxy, method, args) -> {
                    calls.add(method.getName());
                    if (method.getName().equals("mount")) {
                        beforeMount.run();
                    }
                    try {
                        return method.invoke(real, args);
                    } catch (java.lang.reflect.InvocationTargetException e) {
                        throw e.getCause();
                    }
                });
    }

    /** How many times a DiskTools method was called, e.g. "mkfs". */
    long calls(String method) {
        synchronized (calls) {
            return calls.stream().filter(method::equals).count();
        }
    }

    /** A volume service over the fake sysfs and real /dev, the real tools, and this fixture's state dir. */
    VolumeService service(Duration attachWait, List<MountUsers> users) throws IOException {
        return service(attachWait, users, LeaseTimer.of(leases));
    }

    VolumeService service(Duration attachWait, List<MountUsers> users, LeaseTimer timer) throws IOException {
        DiskTools tools = tools();
        SysfsVolumes volumes = new SysfsVolumes(dir.resolve("sys"), Path.of("/dev"));
        FormatDecider decider = new FormatDecider(tools);
        MountTable mounts = new MountTable();
        MountRegistry registry = new MountRegistry(state);
        Object lock = new Object();
        Freezer freezer = new Freezer(tools, mounts, registry, volumes, Clock.systemUTC(), timer,
                Duration.ofSeconds(30), Duration.ofMinutes(5), state, lock);
        BlankProver prover = new BlankProver(volumes, tools, state, zeroReadTimeout, proverClock);
        Mounter mounter = new Mounter(volumes, decider, prover, tools, mounts, registry, this::owner, attachWait, state, lock);
        Unmounter unmounter = new Unmounter(tools, mounts, registry, new ProcProcessTable(), users, freezer,
                Duration.ofSeconds(2), lock);
        return new VolumeService(volumes, decider, mounts, registry, mounter, unmounter, freezer);
    }

    /** A plain mount request for a device path. */
    static MountSpec spec(Path device, Path mountPoint, boolean allowFormat) {
        return new MountSpec(new VolumeRef("", device.toString()), mountPoint, Filesystem.EXT4, false, false, false,
                allowFormat, "", Duration.ofSeconds(2), null, null);
    }

    static MountSpec spec(Path device, Path mountPoint, Filesystem fs, boolean allowFormat) {
        return new MountSpec(new VolumeRef("", device.toString()), mountPoint, fs, false, false, false,
                allowFormat, "", Duration.ofSeconds(2), null, null);
    }

    /** Runs a command, failing the test unless it exits 0; returns its stdout. */
    static String sh(String... argv) throws IOException, InterruptedException {
        ProcessBuilder pb = new ProcessBuilder(argv).redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null")));
        pb.environment().put("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
        Process p = pb.start();
        var err = java.util.concurrent.CompletableFuture.supplyAsync(() -> {
            try {
                return new String(p.getErrorStream().readAllBytes(), StandardCharsets.UTF_8);
            } catch (IOException e) {
                return "";
            }
        });
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        if (!p.waitFor(120, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            throw new AssertionError(String.join(" ", argv) + " did not finish");
        }
        if (p.exitValue() != 0) {
            throw new AssertionError(String.join(" ", argv) + " exited " + p.exitValue() + ": " + err.join() + out);
        }
        return out;
    }

    /** SHA-256 of the whole device: proof that nothing was written. */
    static String sha256(Path device) throws IOException {
        try (InputStream in = Files.newInputStream(device)) {
            MessageDigest md = MessageDigest.getInstance("SHA-256");
            byte[] buf = new byte[1 << 20];
            int n;
            while ((n = in.read(buf)) > 0) {
                md.update(buf, 0, n);
            }
            return HexFormat.of().formatHex(md.digest());
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    /** The mountinfo entry at exactly this path, if mounted. */
    static java.util.Optional<MountTable.Entry> mounted(Path mountPoint) throws IOException {
        return new MountTable().at(mountPoint);
    }

    /** Thaws and unmounts everything mounted under the test's directory, then detaches its devices. */
    @Override
    public void close() throws Exception {
        leases.shutdownNow();
        List<Throwable> problems = new ArrayList<>();
        List<MountTable.Entry> mine = new ArrayList<>(new MountTable().read().stream()
                .filter(e -> e.mountPoint().startsWith(dir))
                .filter(e -> !e.mountPoint().getFileName().toString().startsWith("unreadable-host-"))
                .toList());
        Collections.reverse(mine);
        for (MountTable.Entry e : mine) {
            OsDiskTools.run(Duration.ofSeconds(30), "fsfreeze", "--unfreeze", e.mountPoint().toString());
            OsCommand.Result r = OsDiskTools.run(Duration.ofMinutes(1), "umount", e.mountPoint().toString());
            if (!r.ok()) {
                problems.add(new IllegalStateException("clean-up: " + r.describe()));
            }
        }
        for (int i = devices.size() - 1; i >= 0; i--) {
            try {
                devices.get(i).close();
            } catch (Exception e) {
                problems.add(e);
            }
        }
        if (!problems.isEmpty()) {
            IllegalStateException e = new IllegalStateException("clean-up failed: " + problems);
            problems.forEach(e::addSuppressed);
            throw e;
        }
    }
}
