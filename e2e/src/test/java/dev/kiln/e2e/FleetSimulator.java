package dev.kiln.e2e;

import com.sun.net.httpserver.HttpServer;
import dev.kiln.testkit.LoopDevice;
import dev.kiln.testkit.MetadataMock;
import software.amazon.awssdk.services.ec2.Ec2Client;
import software.amazon.awssdk.services.ec2.model.Filter;
import software.amazon.awssdk.services.ec2.model.Instance;
import software.amazon.awssdk.services.ec2.model.InstanceAttributeName;
import software.amazon.awssdk.services.ec2.model.Volume;

import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.URI;
import java.net.URLDecoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Plays the part of EC2's hardware for instances that moto launches: for each Kiln instance it
 * sees running, it boots a real kiln-agent in ec2 mode, with that instance's id and user data
 * served by its own amazon-ec2-metadata-mock, listening on the instance's private address. The
 * test VPC's subnet is carved from 127.0.0.0/8, so those addresses are loopback addresses and
 * the controller reaches agents exactly as it would through a VPN (`--address private`). When an
 * agent powers off, the simulator terminates its instance in moto, as
 * InstanceInitiatedShutdownBehavior=terminate makes EC2 do (moto cannot observe a guest's power-off).
 *
 * <p>With {@link #withMachines}, each instance is also a machine of its own (needs root): its
 * agent runs in a private mount namespace with empty /mnt and /srv, so its boot mounts land there
 * as on a fresh instance and never on this host's; each EBS volume moto attaches to it becomes a
 * loop device over a sparse image (one image per volume id, kept after the instance ends, as EBS
 * keeps the volume), shown to that agent through a sysfs tree with the NVMe model and serial a
 * Nitro instance shows; and EC2 requests pass through a loopback proxy that copies a volume's
 * image when CreateSnapshot is asked for it (while the agent holds the filesystem frozen, so the
 * copy is the point in time the request fixes), which is what a volume restored from that
 * snapshot later starts from.
 */
final class FleetSimulator implements AutoCloseable {

    record Booted(MetadataMock imds, AgentProcess agent, Path stateDir, Path sysfs, Map<String, LoopDevice> volumes) {
    }

    private static final long GIB = 1L << 30;
    private static final Pattern SNAPSHOT_ID = Pattern.compile("<snapshotId>(snap-[0-9a-f]+)</snapshotId>");
    private static final Set<String> HOP_BY_HOP = Set.of("connection", "content-length", "expect", "host", "upgrade",
            "transfer-encoding", "keep-alive");

    private final Ec2Client ec2;
    private final Path dir;
    private final boolean machines;
    private final Map<String, Booted> booted = new ConcurrentHashMap<>();
    private final java.util.Set<String> crashed = ConcurrentHashMap.newKeySet(); // agent killed, machine up
    private final Thread thread;
    private final HttpServer proxy;
    private final URI moto;
    private volatile boolean stop;
    private volatile String failure;

    FleetSimulator(Ec2Client ec2, Path dir) {
        this(ec2, dir, false, null);
    }

    private FleetSimulator(Ec2Client ec2, Path dir, boolean machines, URI moto) {
        this.ec2 = ec2;
        this.dir = dir;
        this.machines = machines;
        this.moto = moto;
        try {
            this.proxy = moto != null ? startProxy() : null;
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
        this.thread = new Thread(this::loop, "fleet-simulator");
        this.thread.setDaemon(true);
        this.thread.start();
    }

    /** A simulator with the EC2 proxy in front of moto (to inject errors moto cannot make), without machines. */
    static FleetSimulator withProxy(Ec2Client ec2, URI moto, Path dir) {
        return new FleetSimulator(ec2, dir, false, moto);
    }

    /**
     * Makes the proxy answer every request for {@code action} with this EC2 error until cleared
     * (null code): for what moto cannot show, such as EC2 out of capacity or an exhausted quota.
     */
    void failEvery(String action, String code, String message, int status) {
        injected = code == null ? null : new String[]{action, code, message, Integer.toString(status)};
    }

    private volatile String[] injected;

    /** A simulator whose instances are machines with volumes and snapshots (root only); see the class comment. */
    static FleetSimulator withMachines(Ec2Client ec2, URI moto, Path dir) {
        return new FleetSimulator(ec2, dir, true, moto);
    }

    /** Where the controller should send EC2 requests (the proxy, or null without one). */
    URI ec2Endpoint() {
        return proxy == null ? null : URI.create("http://127.0.0.1:" + proxy.getAddress().getPort());
    }

    Booted booted(String instanceId) {
        return booted.get(instanceId);
    }

    /**
     * Kills an instance's agent while its machine stays up (the agent crashed; the guest did not
     * power off), so the simulator does not terminate the instance.
     */
    void crashAgent(String instanceId) throws InterruptedException {
        crashed.add(instanceId);
        booted.get(instanceId).agent().kill();
    }

    private void loop() {
        while (!stop) {
            try {
                ec2.describeInstancesPaginator(r -> r.filters(
                                Filter.builder().name("tag:kiln:managed").values("true").build(),
                                Filter.builder().name("instance-state-name").values("pending", "running").build()))
                        .reservations().forEach(r -> r.instances().forEach(this::boot));
                for (var e : booted.entrySet()) {
                    if (!e.getValue().agent().alive() && !crashed.contains(e.getKey())) {
                        // The guest powered off: EC2 terminates instances launched with shutdown behaviour "terminate".
                        ec2.terminateInstances(t -> t.instanceIds(e.getKey()));
                        unplugAll(e.getValue());
                    } else if (machines) {
                        plug(e.getKey(), e.getValue());
                    }
                }
                Thread.sleep(300);
            } catch (InterruptedException e) {
                return;
            } catch (Exception e) {
                // moto busy or an agent still starting: look again
            }
        }
    }

    private void boot(Instance i) {
        if (booted.containsKey(i.instanceId()) || i.privateIpAddress() == null) {
            return;
        }
        try {
            String userData = new String(Base64.getDecoder().decode(ec2.describeInstanceAttribute(r -> r
                    .instanceId(i.instanceId()).attribute(InstanceAttributeName.USER_DATA)).userData().value()),
                    StandardCharsets.UTF_8);
            MetadataMock imds = MetadataMock.builder().instanceId(i.instanceId()).region("us-east-1")
                    .metadataValue("local-ipv4", i.privateIpAddress()).userData(userData).start();
            Path state = Files.createDirectories(dir.resolve(i.instanceId()));
            Path sysfs = Files.createDirectories(state.resolve("sys/block")).getParent();
            Path settings = state.resolve("agent.yml");
            Files.writeString(settings, "kiln:\n  mode: ec2\n  state-dir: '" + state.resolve("state") + "'\n  imds:\n    endpoint: "
                    + imds.endpoint() + "\n");
            Map<String, String> env = new HashMap<>(Map.of(
                    "KILN_GRPC_HOST", i.privateIpAddress(),   // as on EC2: the instance's own address
                    "KILN_SSH_HOST", i.privateIpAddress(),
                    "KILN_SSH_PORT", "0",                      // several instances share this host's port space
                    "KILN_VOLUMES_SYSFS_ROOT", sysfs.toString(),
                    "KILN_VOLUMES_ATTACH_TIMEOUT", machines ? "60s" : "3s",
                    "KILN_LEASE_POWER_OFF", "exit",            // no machine to power off here
                    "KILN_LEASE_BACKSTOP", "none"));           // no systemd as PID 1 here
            // A machine of its own: a private mount namespace whose /mnt and /srv start empty.
            List<String> wrapper = machines ? List.of("unshare", "--mount", "--propagation", "private", "--", "sh", "-c",
                    "mount -t tmpfs -o mode=0755 machine-mnt /mnt && mount -t tmpfs -o mode=0755 machine-srv /srv && exec \"$@\"",
                    "machine") : List.of();
            AgentProcess agent = AgentProcess.start(wrapper, List.of(), settings, env);
            booted.put(i.instanceId(), new Booted(imds, agent, state, sysfs, new ConcurrentHashMap<>()));
        } catch (Exception e) {
            failure = "cannot boot an agent for " + i.instanceId() + ": " + e;
            throw new IllegalStateException(failure, e);
        }
    }

    /** Makes each volume moto shows attached to the instance appear as an EBS NVMe device to its agent. */
    private void plug(String instanceId, Booted b) throws IOException {
        List<Volume> attached = ec2.describeVolumes(r -> r.filters(Filter.builder().name("attachment.instance-id")
                .values(instanceId).build())).volumes();
        for (Volume v : attached) {
            if (b.volumes().containsKey(v.volumeId())) {
                continue;
            }
            Path image = image(v);
            LoopDevice loop = LoopDevice.attach(image);
            String name = loop.device().getFileName().toString();
            Path real = Path.of("/sys/class/block", name).toRealPath();
            Path entry = Files.createDirectories(b.sysfs().resolve("block").resolve(name).resolve("device")).getParent();
            Files.writeString(entry.resolve("dev"), Files.readString(real.resolve("dev")));
            Files.writeString(entry.resolve("size"), Files.readString(real.resolve("size")));
            Files.writeString(entry.resolve("device/model"), "Amazon Elastic Block Store\n");
            Files.writeString(entry.resolve("device/serial"), v.volumeId().replace("-", "") + "\n");
            b.volumes().put(v.volumeId(), loop);
        }
    }

    /** The volume's image: kept from an earlier attachment, copied from its snapshot, or a new sparse file. */
    private Path image(Volume v) throws IOException {
        Path image = Files.createDirectories(dir.resolve("volumes")).resolve(v.volumeId() + ".img");
        if (Files.exists(image)) {
            return image;
        }
        if (v.snapshotId() != null && !v.snapshotId().isEmpty()) {
            Path snapshot = dir.resolve("snapshots").resolve(v.snapshotId() + ".img");
            if (!Files.exists(snapshot)) {
                failure = v.volumeId() + " is restored from " + v.snapshotId() + ", whose contents this simulator never saw";
                throw new IOException(failure);
            }
            copy(snapshot, image);
        } else {
            Files.createFile(image);
        }
        try (var f = java.nio.channels.FileChannel.open(image, java.nio.file.StandardOpenOption.WRITE)) {
            if (f.size() < v.size() * GIB) {
                f.write(java.nio.ByteBuffer.wrap(new byte[1]), v.size() * GIB - 1); // sparse: grows the file only
            }
        }
        return image;
    }

    private static void copy(Path from, Path to) throws IOException {
        try {
            Process cp = new ProcessBuilder("cp", "--sparse=always", "--reflink=auto", from.toString(), to.toString())
                    .redirectErrorStream(true).start();
            String out = new String(cp.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            if (cp.waitFor() != 0) {
                throw new IOException("cp " + from + " " + to + " failed: " + out);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted while copying " + from, e);
        }
    }

    private void unplugAll(Booted b) {
        for (var it = b.volumes().entrySet().iterator(); it.hasNext(); ) {
            var e = it.next();
            for (int attempt = 0; attempt < 20; attempt++) {
                try {
                    e.getValue().close();
                    break;
                } catch (RuntimeException busy) {
                    try {
                        Thread.sleep(250); // the namespace's mounts go away with its last process
                    } catch (InterruptedException ie) {
                        Thread.currentThread().interrupt();
                        return;
                    }
                }
            }
            it.remove();
        }
    }

    private HttpServer startProxy() throws IOException {
        HttpServer server = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 0);
        HttpClient client = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();
        server.createContext("/", exchange -> {
            try {
                byte[] body = exchange.getRequestBody().readAllBytes();
                Map<String, String> form = form(new String(body, StandardCharsets.UTF_8));
                String[] fail = injected;
                if (fail != null && fail[0].equals(form.get("Action"))) {
                    byte[] error = ("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>" + fail[1]
                            + "</Code><Message>" + fail[2] + "</Message></Error></Errors><RequestID>" + UUID.randomUUID()
                            + "</RequestID></Response>").getBytes(StandardCharsets.UTF_8);
                    exchange.getResponseHeaders().add("Content-Type", "text/xml;charset=UTF-8");
                    exchange.sendResponseHeaders(Integer.parseInt(fail[3]), error.length);
                    exchange.getResponseBody().write(error);
                    return;
                }
                Path captured = null;
                if ("CreateSnapshot".equals(form.get("Action"))) {
                    Path image = dir.resolve("volumes").resolve(form.get("VolumeId") + ".img");
                    if (Files.exists(image)) {
                        captured = Files.createDirectories(dir.resolve("snapshots")).resolve("pending-" + UUID.randomUUID());
                        copy(image, captured);
                    }
                }
                HttpRequest.Builder forward = HttpRequest.newBuilder(moto.resolve(exchange.getRequestURI().toString()))
                        .method(exchange.getRequestMethod(), HttpRequest.BodyPublishers.ofByteArray(body));
                exchange.getRequestHeaders().forEach((k, values) -> {
                    if (!HOP_BY_HOP.contains(k.toLowerCase())) {
                        values.forEach(v -> forward.header(k, v));
                    }
                });
                HttpResponse<byte[]> response = client.send(forward.build(), HttpResponse.BodyHandlers.ofByteArray());
                if (captured != null) {
                    Matcher m = SNAPSHOT_ID.matcher(new String(response.body(), StandardCharsets.UTF_8));
                    if (m.find()) {
                        Files.move(captured, captured.resolveSibling(m.group(1) + ".img"));
                    } else {
                        Files.deleteIfExists(captured);
                    }
                }
                response.headers().map().forEach((k, values) -> {
                    if (!HOP_BY_HOP.contains(k.toLowerCase()) && !k.startsWith(":")) {
                        exchange.getResponseHeaders().put(k, new ArrayList<>(values));
                    }
                });
                exchange.sendResponseHeaders(response.statusCode(), response.body().length == 0 ? -1 : response.body().length);
                exchange.getResponseBody().write(response.body());
            } catch (Exception e) {
                failure = "EC2 proxy: " + e;
                exchange.sendResponseHeaders(502, -1);
            } finally {
                exchange.close();
            }
        });
        server.start();
        return server;
    }

    private static Map<String, String> form(String body) {
        Map<String, String> out = new HashMap<>();
        for (String pair : body.split("&")) {
            int eq = pair.indexOf('=');
            if (eq > 0) {
                out.put(URLDecoder.decode(pair.substring(0, eq), StandardCharsets.UTF_8),
                        URLDecoder.decode(pair.substring(eq + 1), StandardCharsets.UTF_8));
            }
        }
        return out;
    }

    /** What went wrong inside the simulator, if anything (tests assert it is null). */
    String failure() {
        return failure;
    }

    @Override
    public void close() throws Exception {
        stop = true;
        thread.interrupt();
        thread.join(5000);
        for (Booted b : booted.values()) {
            b.agent().close();
            b.imds().close();
            unplugAll(b);
        }
        if (proxy != null) {
            proxy.stop(0);
        }
    }

    /** Waits until the simulator booted an agent for the instance and it listens. */
    Booted awaitBooted(String instanceId, Duration timeout) throws InterruptedException {
        long end = System.nanoTime() + timeout.toNanos();
        while (System.nanoTime() < end) {
            Booted b = booted.get(instanceId);
            if (b != null) {
                b.agent().awaitListening(timeout);
                return b;
            }
            Thread.sleep(100);
        }
        throw new AssertionError("no agent booted for " + instanceId + (failure == null ? "" : ": " + failure));
    }
}
