package dev.kiln.controller.local;

import com.google.common.net.InetAddresses;
import dev.kiln.controller.ExitCodes;
import dev.kiln.controller.KilnException;
import dev.kiln.controller.fleet.ManagedInstance;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.TreeMap;
import java.util.function.Consumer;
import java.util.stream.Stream;

/**
 * The instance store: one directory per instance under {@code fleet/instances}, holding its record
 * ({@value #RECORD}: role, launch time, lease end, agent port, volumes, labels, state) beside its
 * agent's files. Reads and writes the records; when an instance has ended is the provider's call.
 */
final class LocalInstances {

    static final String RECORD = "instance.properties";
    /** A record's agent address and certificate name, when not 127.0.0.1 and localhost ({@link #agentHost}). */
    static final String GRPC_HOST = "grpc-host";
    static final String CERT_NAME = "cert-name";
    /** Written first into a new instance's directory: "PID LAUNCHED" of the `kiln launch` making it. */
    static final String LAUNCHER_FILE = "launcher";

    private final Path dir;
    private final Consumer<String> narrate;

    /**
     * @param dir     {@code fleet/instances}
     * @param narrate where a record's ignored agent address is reported
     */
    LocalInstances(Path dir, Consumer<String> narrate) {
        this.dir = dir;
        this.narrate = narrate;
    }

    /** Whether a name is a local instance id (local-XXXXXXXX). */
    static boolean isId(String s) {
        return s.matches("local-[0-9a-f]{8}");
    }

    /** The directory of one instance. */
    Path dir(String id) {
        return dir.resolve(id);
    }

    /** Whether the instance has a record (its launch got as far as writing one). */
    boolean exists(String id) {
        return Files.exists(dir(id).resolve(RECORD));
    }

    /** The instance's record. */
    Properties load(String id) {
        return RecordFiles.load(dir(id).resolve(RECORD));
    }

    /** Writes the instance's record. */
    void store(String id, Properties p) throws IOException {
        RecordFiles.store(p, dir(id).resolve(RECORD));
    }

    /** The ids of the instances with a record, sorted. */
    List<String> ids() {
        List<String> out = new ArrayList<>();
        if (!Files.isDirectory(dir)) {
            return out;
        }
        try (Stream<Path> all = Files.list(dir)) {
            for (Path p : all.sorted().toList()) {
                if (Files.exists(p.resolve(RECORD))) {
                    out.add(p.getFileName().toString());
                }
            }
        } catch (IOException e) {
            throw new KilnException(ExitCodes.FAILURE, "cannot list " + dir + ": " + e.getMessage(), e);
        }
        return out;
    }

    /** The instance as its record describes it, in {@code state}. */
    ManagedInstance instance(String id, Properties p, String state) {
        Map<String, String> labels = new TreeMap<>();
        p.stringPropertyNames().stream().filter(k -> k.startsWith("label.")).forEach(k -> labels.put(k.substring(6), p.getProperty(k)));
        return new ManagedInstance(id, p.getProperty("role", ""), labels, state, agentHost(dir(id), p), null,
                p.getProperty("expires-at") == null ? null : Instant.parse(p.getProperty("expires-at")),
                p.getProperty(CERT_NAME, "localhost"),
                Integer.parseInt(p.getProperty("grpc-port")),
                Instant.parse(p.getProperty("launched")));
    }

    /**
     * The loopback address the record's agent listens on: {@value #GRPC_HOST} when the record names
     * one (with {@value #CERT_NAME}, the name its certificate carries, as an EC2 instance's address
     * and kiln:cert-name tag do), else 127.0.0.1 where `kiln launch` starts every local agent. A
     * value that is not a loopback address literal is never looked up or dialled.
     */
    private String agentHost(Path instanceDir, Properties p) {
        String host = p.getProperty(GRPC_HOST);
        if (host == null) {
            return "127.0.0.1";
        }
        if (InetAddresses.isInetAddress(host) && InetAddresses.forString(host).isLoopbackAddress()) {
            return host;
        }
        narrate.accept("ignoring " + GRPC_HOST + "=" + host + " in " + instanceDir.resolve(RECORD)
                + ": a local agent listens on a loopback address such as 127.0.0.1, which is used instead");
        return "127.0.0.1";
    }

    /**
     * Whether the `kiln launch` that wrote a pending instance still runs: its pid is alive and that
     * process started before the instance was launched (so it is not a later process with a reused pid).
     */
    static boolean launching(Properties p) {
        long pid;
        try {
            pid = Long.parseLong(p.getProperty("launcher-pid", ""));
        } catch (NumberFormatException e) {
            return false;
        }
        Instant launched = Instant.parse(p.getProperty("launched"));
        return ProcessHandle.of(pid).filter(ProcessHandle::isAlive)
                .map(h -> h.info().startInstant().map(started -> !started.isAfter(launched)).orElse(true))
                .orElse(false);
    }

    /** Records how a command is about to end an instance, for its record. */
    void markEnding(String id, String how) {
        Path file = dir(id).resolve(RECORD);
        if (!Files.isRegularFile(file)) {
            return;
        }
        Properties p = RecordFiles.load(file);
        p.setProperty("ending", how);
        try {
            RecordFiles.store(p, file);
        } catch (IOException e) {
            narrate.accept("cannot record how " + id + " ends in " + file + " (" + e.getMessage() + ")");
        }
    }

    /** Rewrites the instance's expires-at, which reap reads. */
    void recordDeadline(String id, Instant deadline) {
        Path file = dir(id).resolve(RECORD);
        Properties p = RecordFiles.load(file);
        p.setProperty("expires-at", deadline.toString());
        try {
            RecordFiles.store(p, file);
        } catch (IOException e) {
            throw new KilnException(ExitCodes.FAILURE, "cannot record the new deadline of " + id + " in " + file + ": " + e.getMessage(), e);
        }
    }

    /** Mount points under {@code dir}, from /proc/self/mountinfo. */
    static List<String> mountsUnder(Path dir) throws IOException {
        List<String> mine = new ArrayList<>();
        for (String line : Files.readAllLines(Path.of("/proc/self/mountinfo"))) {
            String mp = line.split(" ")[4].replace("\\040", " ");
            if (mp.startsWith(dir + "/") || mp.equals(dir.toString())) {
                mine.add(mp);
            }
        }
        return mine;
    }
}
