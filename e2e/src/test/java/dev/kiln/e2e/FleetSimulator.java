package dev.kiln.e2e;

import dev.kiln.testkit.MetadataMock;
import software.amazon.awssdk.services.ec2.Ec2Client;
import software.amazon.awssdk.services.ec2.model.Filter;
import software.amazon.awssdk.services.ec2.model.Instance;
import software.amazon.awssdk.services.ec2.model.InstanceAttributeName;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Base64;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Plays the part of EC2's hardware for instances that moto launches: for each Kiln instance it
 * sees running, it boots a real kiln-agent in ec2 mode, with that instance's id and user data
 * served by its own amazon-ec2-metadata-mock, listening on the instance's private address. The
 * test VPC's subnet is carved from 127.0.0.0/8, so those addresses are loopback addresses and
 * the controller reaches agents exactly as it would through a VPN (`--address private`). When an
 * agent powers off, the simulator terminates its instance in moto, as
 * InstanceInitiatedShutdownBehavior=terminate makes EC2 do (moto cannot observe a guest's power-off).
 */
final class FleetSimulator implements AutoCloseable {

    record Booted(MetadataMock imds, AgentProcess agent, Path stateDir) {
    }

    private final Ec2Client ec2;
    private final Path dir;
    private final Map<String, Booted> booted = new ConcurrentHashMap<>();
    private final Thread thread;
    private volatile boolean stop;

    FleetSimulator(Ec2Client ec2, Path dir) {
        this.ec2 = ec2;
        this.dir = dir;
        this.thread = new Thread(this::loop, "fleet-simulator");
        this.thread.setDaemon(true);
        this.thread.start();
    }

    Booted booted(String instanceId) {
        return booted.get(instanceId);
    }

    private void loop() {
        while (!stop) {
            try {
                ec2.describeInstancesPaginator(r -> r.filters(
                                Filter.builder().name("tag:kiln:managed").values("true").build(),
                                Filter.builder().name("instance-state-name").values("pending", "running").build()))
                        .reservations().forEach(r -> r.instances().forEach(this::boot));
                for (var e : booted.entrySet()) {
                    if (!e.getValue().agent().alive()) {
                        // The guest powered off: EC2 terminates instances launched with shutdown behaviour "terminate".
                        ec2.terminateInstances(t -> t.instanceIds(e.getKey()));
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
            Path settings = state.resolve("agent.yml");
            Files.writeString(settings, "kiln:\n  mode: ec2\n  state-dir: '" + state.resolve("state") + "'\n  imds:\n    endpoint: "
                    + imds.endpoint() + "\n");
            AgentProcess agent = AgentProcess.start(settings, Map.of(
                    "KILN_GRPC_HOST", i.privateIpAddress(),   // as on EC2: the instance's own address
                    "KILN_LEASE_POWER_OFF", "exit",            // no machine to power off here
                    "KILN_LEASE_BACKSTOP", "none"));           // no systemd as PID 1 here
            booted.put(i.instanceId(), new Booted(imds, agent, state));
        } catch (Exception e) {
            throw new IllegalStateException("cannot boot an agent for " + i.instanceId() + ": " + e, e);
        }
    }

    @Override
    public void close() throws Exception {
        stop = true;
        thread.interrupt();
        thread.join(5000);
        for (Booted b : booted.values()) {
            b.agent().close();
            b.imds().close();
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
        throw new AssertionError("no agent booted for " + instanceId);
    }
}
