package dev.kiln.controller.cli;

import dev.kiln.controller.ExitCodes;
import dev.kiln.controller.KilnException;
import dev.kiln.controller.client.AgentClient;
import dev.kiln.controller.client.AgentEndpoint;
import dev.kiln.controller.client.ClientTls;
import dev.kiln.controller.fleet.AgentUserData;
import dev.kiln.controller.fleet.Ec2Fleet;
import dev.kiln.controller.fleet.ManagedInstance;
import dev.kiln.controller.fleet.VolumeSpec;
import dev.kiln.controller.pki.FleetCa;
import dev.kiln.controller.pki.FleetInit;
import dev.kiln.controller.pki.IssuedCertificate;
import jakarta.inject.Inject;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.UUID;

/** {@code kiln launch}: launch an EC2 instance running kiln-agent. */
@Command(name = "launch", mixinStandardHelpOptions = true,
        description = {"Launch an EC2 instance from a Kiln AMI with a fresh certificate, its lease and volumes,",
                "IMDSv2 required and terminate-on-shutdown, and wait until its agent answers.",
                "Example: kiln launch --role worker --ami-name 'kiln-agent-*' --type c5.2xlarge --ttl 2h \\",
                "           --volume sources:latest --volume builds:latest --label collection=vibes"})
public class LaunchCommand implements Runnable {

    @Inject
    Context context;

    @Mixin
    FleetMixin fleetOptions;

    @Option(names = "--role", defaultValue = "worker", description = "worker, server, or any name (default: ${DEFAULT-VALUE}).")
    String role;

    @Option(names = "--ami", paramLabel = "AMI", description = "An AMI id, or a name pattern such as 'kiln-agent-*' (newest wins).", required = true)
    String ami;

    @Option(names = "--type", paramLabel = "TYPE", defaultValue = "t3.small", description = "Instance type (default: ${DEFAULT-VALUE}).")
    String type;

    @Option(names = "--subnet", paramLabel = "SUBNET_ID", description = "Subnet (default: the default VPC's).")
    String subnet;

    @Option(names = "--security-group", paramLabel = "SG_ID", description = "Security group (repeatable).")
    List<String> securityGroups = new ArrayList<>();

    @Option(names = "--key-name", paramLabel = "NAME", description = "EC2 key pair (optional: Kiln needs none).")
    String keyName;

    @Option(names = "--instance-profile", paramLabel = "NAME", description = "Instance profile (optional: the agent needs no AWS credentials).")
    String instanceProfile;

    @Option(names = "--ttl", defaultValue = "2h", description = "Lease: the instance ends this long after launch unless extended (default: ${DEFAULT-VALUE}).")
    String ttl;

    @Option(names = "--max-lifetime", defaultValue = "12h", description = "Cap of every extension (default: ${DEFAULT-VALUE}).")
    String maxLifetime;

    @Option(names = "--volume", paramLabel = "ROLE:SIZE|ROLE:snap-ID|ROLE:latest", description = "A volume (repeatable): new blank of SIZE GiB, from a snapshot, or from the newest snapshot of ROLE.")
    List<String> volumes = new ArrayList<>();

    @Option(names = "--label", paramLabel = "KEY=VALUE", description = "Label (repeatable), e.g. pr=1234.")
    Map<String, String> labels = new TreeMap<>();

    @Option(names = "--max", paramLabel = "N", description = "Refuse if N managed instances already run (default: max-instances in config.yml, else no cap).")
    Integer max;

    @Option(names = "--grpc-port", defaultValue = "7443", description = "The agent's port (default: ${DEFAULT-VALUE}).")
    int grpcPort;

    @Option(names = "--wait", defaultValue = "10m", description = "How long to wait for the agent to answer (default: ${DEFAULT-VALUE}).")
    String wait;

    @Option(names = "--no-wait", description = "Return once EC2 accepted the launch.")
    boolean noWait;

    @Option(names = "--client-token", description = "Idempotency token; a retry with the same token launches nothing new (default: a new one).")
    String clientToken;

    @Override
    public void run() {
        Duration lease = Durations.parse(ttl);
        Duration cap = Durations.parse(maxLifetime);
        if (lease.compareTo(cap) > 0) {
            throw new KilnException(ExitCodes.USAGE, "--ttl " + ttl + " is longer than --max-lifetime " + maxLifetime);
        }
        List<VolumeSpec> vols = volumes.stream().map(VolumeSpec::parse).toList();
        FleetCa ca = new FleetInit(context.paths(), context.clock()).loadCa();
        ClientTls tls = ClientTls.of(context.paths());
        String certName = "agent-" + HexFormat.of().formatHex(UUID.randomUUID().toString().getBytes(), 0, 6) + ".kiln.internal";
        Instant now = Instant.now();
        IssuedCertificate cert = ca.issueServer(certName, List.of(certName), List.of(), now.minus(Duration.ofMinutes(5)),
                now.plus(cap).plus(Duration.ofDays(1)));
        Ec2Fleet fleet = fleetOptions.fleet(context);
        int maxInstances = max != null ? max : context.settings().get("max-instances", null).map(Integer::parseInt).orElse(0);
        context.err().println("kiln: launching a " + role + " (" + type + ", lease " + ttl + ")...");
        ManagedInstance launched = fleet.launch(new Ec2Fleet.LaunchSpec(role, ami, type, subnet, securityGroups, keyName,
                instanceProfile, lease, labels, vols, AgentUserData.yaml(cert, ca, grpcPort, lease, cap), certName, grpcPort,
                clientToken != null ? clientToken : UUID.randomUUID().toString()), maxInstances);
        context.err().println("kiln: " + launched.id() + " is " + launched.state());
        ManagedInstance m = launched;
        if (!noWait) {
            m = fleet.awaitRunning(launched.id(), Durations.parse(wait));
            context.err().println("kiln: " + m.id() + " is running; waiting for its agent...");
            awaitAgent(m, Durations.parse(wait), tls);
        }
        new Table("INSTANCE", "ROLE", "STATE", "ADDRESS", "EXPIRES").row(m.id(), m.role(), m.state(),
                String.valueOf(fleetOptions.endpoint(context, m)), String.valueOf(m.expiresAt())).print(context.out());
    }

    private void awaitAgent(ManagedInstance m, Duration wait, ClientTls tls) {
        AgentEndpoint endpoint = fleetOptions.endpoint(context, m);
        if (endpoint == null) {
            throw new KilnException(ExitCodes.UNREACHABLE, m.id() + " has no " + context.settings().get("address", null).orElse("auto")
                    + " address; use --address private (through a VPN or bastion) or give it a public IP");
        }
        Instant giveUp = Instant.now().plus(wait);
        long dots = 0;
        KilnException last = null;
        while (Instant.now().isBefore(giveUp)) {
            try (AgentClient client = new AgentClient(endpoint, tls, Duration.ofSeconds(5))) {
                var s = client.status();
                context.err().println("kiln: agent " + s.getAgentVersion() + " on " + m.id() + " answers at " + endpoint);
                return;
            } catch (KilnException e) {
                last = e;
            }
            if (++dots % 6 == 0) {
                context.err().println("kiln: still waiting for the agent on " + endpoint + " (" + last.getMessage() + ")");
            }
            try {
                Thread.sleep(1000);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return;
            }
        }
        throw new KilnException(ExitCodes.TIMEOUT, "the agent on " + m.id() + " did not answer at " + endpoint + " within "
                + Durations.format(wait) + (last == null ? "" : " (" + last.getMessage() + ")")
                + "; the instance is running and ends by its lease, or `kiln terminate " + m.id() + " --force`");
    }
}
