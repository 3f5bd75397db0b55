package dev.kiln.controller.cli;

import dev.kiln.controller.ExitCodes;
import dev.kiln.controller.KilnException;
import dev.kiln.controller.client.AgentClient;
import dev.kiln.controller.client.AgentEndpoint;
import dev.kiln.controller.client.ClientTls;
import dev.kiln.controller.client.Enroller;
import dev.kiln.controller.fleet.AgentUserData;
import dev.kiln.controller.fleet.BootScript;
import dev.kiln.controller.fleet.Ec2Fleet;
import dev.kiln.controller.fleet.InstanceLayout;
import dev.kiln.controller.fleet.ManagedInstance;
import dev.kiln.controller.fleet.ServiceSpec;
import dev.kiln.controller.fleet.SnapshotPolicy;
import dev.kiln.controller.fleet.VolumeSpec;
import dev.kiln.controller.local.AgentJar;
import dev.kiln.controller.local.LocalProvider;
import dev.kiln.controller.pki.FleetCa;
import dev.kiln.controller.pki.FleetInit;
import dev.kiln.controller.pki.IssuedCertificate;
import dev.kiln.proto.agent.v1.StatusResponse;
import jakarta.inject.Inject;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.UUID;

/** {@code kiln launch}: launch an EC2 instance running kiln-agent. */
@Command(name = "launch", mixinStandardHelpOptions = true,
        description = {"Launch an instance running kiln-agent with its lease and volumes, and wait",
                "until its agent answers. On the local provider (the default) it is an agent",
                "process on this machine, its volumes loop devices (root) or directories. On",
                "EC2 (--provider ec2) it runs from a Kiln AMI with its own certificate, IMDSv2",
                "required and terminate-on-shutdown, its volumes created first, attached by id.",
                "A --role naming a template in config.yml (templates: NAME: {option: value})",
                "takes its options from it; flags win. Examples:",
                "  kiln launch --volume sources:latest --volume builds:latest --ttl 1h",
                "  kiln launch --provider ec2 --ami 'kiln-agent-*' --type c5.2xlarge \\",
                "      --volume sources:latest --volume builds:latest --label collection=vibes",
                "  kiln launch --role preview --label pr=3012 --label branch=main   # docs/previews.md"})
public class LaunchCommand implements Runnable {

    @Inject
    Context context;

    @Inject
    Fleets fleets;

    @Inject
    AgentClients clients;

    @Mixin
    FleetMixin fleetOptions;

    @Option(names = "--role", paramLabel = "ROLE", defaultValue = "worker",
            description = "worker, server, a template's name from config.yml, or any name (default: ${DEFAULT-VALUE}).")
    String role;

    @Option(names = "--ami", paramLabel = "AMI", description = "EC2: an AMI id, or a name pattern such as 'kiln-agent-*' (newest wins).")
    String ami;

    @Option(names = "--type", paramLabel = "TYPE", description = "EC2: instance type (default: t3.small).")
    String type;

    @Option(names = "--subnet", paramLabel = "SUBNET_ID", description = "Subnet (default: the default VPC's).")
    String subnet;

    @Option(names = "--security-group", paramLabel = "SG_ID", description = "Security group (repeatable).")
    List<String> securityGroups = new ArrayList<>();

    @Option(names = "--key-name", paramLabel = "NAME", description = "EC2 key pair (optional: Kiln needs none).")
    String keyName;

    @Option(names = "--instance-profile", paramLabel = "NAME", description = "Instance profile (optional: the agent needs no AWS credentials).")
    String instanceProfile;

    @Option(names = "--ttl", paramLabel = "DURATION", description = "Lease: the instance ends this long after launch unless extended (default: 2h).")
    String ttl;

    @Option(names = "--max-lifetime", paramLabel = "DURATION", description = "Cap of every extension (default: 12h).")
    String maxLifetime;

    @Option(names = "--volume", paramLabel = "ROLE:SIZE|ROLE:snap-ID|ROLE:latest|ROLE:vol-ID", description = "A volume (repeatable): new blank of SIZE GiB, from a snapshot, from the newest snapshot of ROLE, or an existing volume of the fleet, attached as it is.")
    List<String> volumes = new ArrayList<>();

    @Option(names = "--keep-volume", paramLabel = "ROLE",
            description = "Keep this role's volume after the instance ends (repeatable); without it, a volume is deleted"
                    + " when the instance ends only if its data is safe, else kept and flagged unsaved.")
    List<String> keepVolumes = new ArrayList<>();

    @Option(names = "--forever", description = "No deadline: the instance runs until `kiln stop`/`kiln terminate`, an"
            + " interruption notice, or its backstop ends it (an always-on server). Never the default; not with --ttl.")
    boolean forever;

    @Option(names = "--collection", paramLabel = "NAME",
            description = "The collection the volumes belong to: they and their snapshots are tagged with it, and ROLE:latest"
                    + " and snapshot retention look only inside it (default: default).")
    String collection;

    @Option(names = "--label", paramLabel = "KEY=VALUE", description = "Label (repeatable), e.g. pr=1234.")
    Map<String, String> labels = new TreeMap<>();

    @Option(names = "--max", paramLabel = "N", description = "Refuse if N managed instances already run (default: max-instances in config.yml, else no cap).")
    Integer max;

    @Option(names = "--grpc-port", paramLabel = "PORT", description = "EC2: the agent's port (default: 7443).")
    Integer grpcPort;

    @Option(names = "--wait", paramLabel = "DURATION", defaultValue = "10m", description = "How long to wait for the agent to answer (default: ${DEFAULT-VALUE}).")
    String wait;

    @Option(names = "--no-wait", description = "Return once EC2 accepted the launch.")
    boolean noWait;

    @Option(names = "--boot-build", description = "Start a tup build of the work tree once the volumes are mounted, on every boot.")
    boolean bootBuild;

    @Option(names = "--boot-profile", paramLabel = "NAME", description = "Profile the boot build builds (repeatable; implies --boot-build; default: all).")
    List<String> bootProfiles = new ArrayList<>();

    @Option(names = "--boot-tree", paramLabel = "NAME", description = "Where in the work tree the boot build runs, e.g. vibes (implies --boot-build; default: the work tree itself).")
    String bootTree;

    @Option(names = "--boot-script", paramLabel = "FILE",
            description = {"A /bin/sh script the agent runs once per boot, after the volumes are mounted, as the build user,",
                    "with each label as KILN_LABEL_KEY; services start when it succeeds (`kiln logs -f --agent ID boot`)."})
    Path bootScript;

    @Option(names = "--service", paramLabel = "NAME:PORT[/PATH][=COMMAND]",
            description = {"A service (repeatable): COMMAND runs (/bin/sh -c, as the build user) after the boot script succeeds,",
                    "restarted when it exits; without =COMMAND, a port something else serves. `kiln ls -o wide` and",
                    "`kiln open ID NAME` show its link, http://HOST:PORT/PATH."})
    List<String> services = new ArrayList<>();

    @Option(names = "--service-keeps-alive", paramLabel = "NAME",
            description = "The service NAME counts as busy for the idle timeout while it runs (repeatable; otherwise services do not keep an instance up).")
    List<String> keepsAlive = new ArrayList<>();

    /** The services a template gives (its map entries may carry keeps-alive), used when no --service is given. */
    private List<ServiceSpec> templateServices = List.of();

    @Option(names = "--forward-port", paramLabel = "PORT", description = "A port on the instance's loopback the owner may"
            + " forward to with `kiln forward` (repeatable; a service's port needs none).")
    List<Integer> forwardPorts = new ArrayList<>();

    @Option(names = "--client-token", paramLabel = "TOKEN", description = "Idempotency token; a retry with the same token launches nothing new (default: a new one).")
    String clientToken;

    @Override
    public void run() {
        applyTemplate();
        if (forever && ttl != null) {
            throw new KilnException(ExitCodes.USAGE, "--forever and --ttl " + ttl + " contradict each other (a lease without"
                    + " a deadline, or one that ends); give one");
        }
        ttl = forever ? "forever" : ttl != null ? ttl : "2h";
        maxLifetime = maxLifetime != null ? maxLifetime : "12h";
        // null: --forever, no deadline
        Duration lease = forever ? null : Durations.parse(ttl);
        Duration cap = Durations.parse(maxLifetime);
        if (lease != null && lease.compareTo(cap) > 0) {
            throw new KilnException(ExitCodes.USAGE, "--ttl " + ttl + " is longer than --max-lifetime " + maxLifetime);
        }
        List<VolumeSpec> vols = kept(inCollection(volumes.stream().map(VolumeSpec::parse).toList()));
        refuseRepeatedRoles(vols);
        boolean onEc2 = !fleetOptions.providerName(context).equals("local");
        AgentUserData.Workload workload = workload(onEc2 ? reservedPorts(grpcPort != null ? grpcPort : 7443, !vols.isEmpty())
                : Map.of());
        FleetCa ca = new FleetInit(context.paths(), context.clock()).loadCa();
        ClientTls tls = ClientTls.of(context.paths());
        LaunchRecord record = launchRecord(ca, Durations.parse(wait));
        String certName = record.certName();
        IssuedCertificate cert = record.cert();
        String ownerKey = readOwnerKey();
        boolean boot = bootBuild || !bootProfiles.isEmpty() || bootTree != null;
        if (bootTree != null && (bootTree.startsWith("/") || bootTree.contains(".."))) {
            throw new KilnException(ExitCodes.USAGE, "--boot-tree is a path inside the work tree such as vibes, not '" + bootTree + "'");
        }
        for (int p : forwardPorts) {
            if (p < 1 || p > 65535) {
                throw new KilnException(ExitCodes.USAGE, "--forward-port " + p + " is not a TCP port 1-65535");
            }
        }
        if (!forwardPorts.isEmpty() && vols.isEmpty()) {
            throw new KilnException(ExitCodes.USAGE, "--forward-port needs the instance's SSH server, which runs only with a"
                    + " volume (e.g. --volume data:10); nothing was launched");
        }
        if (boot && vols.isEmpty()) {
            throw new KilnException(ExitCodes.USAGE, "--boot-build needs a volume to build on (--volume builds:SIZE, ...)");
        }
        int maxInstances = max != null ? max : context.settings().get("max-instances", null).map(Integer::parseInt).orElse(0);
        if (fleetOptions.providerName(context).equals("local")) {
            launchLocal(lease, cap, vols, boot, maxInstances, ca, tls, workload);
            return;
        }
        if (ami == null) {
            throw new KilnException(ExitCodes.USAGE, "--ami is required on the ec2 provider (an AMI id, or a name pattern such as"
                    + " 'kiln-agent-*'; build one with packer/)");
        }
        String type = this.type != null ? this.type : "t3.small";
        int port = grpcPort != null ? grpcPort : 7443;
        Ec2Fleet fleet = fleetOptions.ec2(fleets).runningTimeout(Durations.parse(wait));
        String[] workTree = new String[1];
        fleet.closedServicePorts(securityGroups, subnet, workload.services()).forEach(w -> context.err().println("kiln: " + w));
        context.err().println("kiln: launching a " + role + " (" + type + ", lease " + ttl + ")...");
        ManagedInstance launched = fleet.launch(new Ec2Fleet.LaunchSpec(role, ami, type, subnet, securityGroups, keyName,
                instanceProfile, lease, labels, vols, created -> {
                    InstanceLayout layout = InstanceLayout.plan("", role, created);
                    return AgentUserData.yaml(cert, ca, port, lease, cap, layout, ownerKey,
                            boot ? new AgentUserData.BootBuild(bootWorkTree(layout.workTree()), bootProfiles, List.of()) : null,
                            workload, forwardPorts, scheduleSettings());
                }, certName, port,
                clientToken != null ? clientToken : UUID.randomUUID().toString()), maxInstances, record.startedAt());
        context.err().println("kiln: " + launched.id() + " is " + launched.state());
        ManagedInstance m = launched;
        String expires = m.expiresAt() == null ? "" : m.expiresAt().truncatedTo(java.time.temporal.ChronoUnit.SECONDS).toString();
        if (!noWait) {
            m = fleet.awaitRunning(launched.id(), Durations.parse(wait));
            context.err().println("kiln: " + m.id() + " is running; waiting for its agent...");
            expires = deadline(awaitAgent(m, Durations.parse(wait), tls, enroller(ca, tls), certName, cap));
        }
        if (workTree[0] != null) {
            context.err().println("kiln: " + LocalProvider.workTreeHint(m.id(), workTree[0]));
        }
        printLaunched(m, expires);
    }

    /**
     * The bootstrap certificate and start of this launch: kept under the state directory per
     * --client-token, so a retry sends the same parameters; fresh without a token.
     */
    private LaunchRecord launchRecord(FleetCa ca, Duration wait) {
        if (clientToken == null) {
            return LaunchRecord.fresh(ca, wait, Instant.now());
        }
        return LaunchRecord.forToken(context.paths().stateDir().resolve("launches"), LaunchRecord.checkToken(clientToken), ca,
                wait, Instant.now());
    }

    /**
     * Labels, boot script and services for the agent's settings, checked before anything is
     * launched: a bad --service, a duplicate name or port, a boot script that is not a readable
     * file or too large, two labels that would set the same variable.
     *
     * @param reserved ports the instance's agent itself listens on
     */
    private AgentUserData.Workload workload(Map<Integer, String> reserved) {
        List<ServiceSpec> declared = services.isEmpty() ? templateServices : services.stream().map(ServiceSpec::parse).toList();
        declared = ServiceSpec.check(declared, keepsAlive, reserved);
        Map<String, String> byVariable = new TreeMap<>();
        labels.keySet().forEach(k -> {
            if (!k.matches("[A-Za-z0-9][A-Za-z0-9_-]{0,62}")) {
                throw new KilnException(ExitCodes.USAGE, "label name '" + k + "' must be 1-63 letters, digits, '_' or '-',"
                        + " starting with a letter or digit (it reaches the boot script and services as KILN_LABEL_NAME);"
                        + " nothing was launched");
            }
            String variable = "KILN_LABEL_" + k.toUpperCase(java.util.Locale.ROOT).replaceAll("[^A-Z0-9]", "_");
            String other = byVariable.put(variable, k);
            if (other != null) {
                throw new KilnException(ExitCodes.USAGE, "the labels '" + other + "' and '" + k + "' would both reach the boot"
                        + " script and services as " + variable + "; nothing was launched: rename one");
            }
        });
        BootScript script = bootScript == null ? null : BootScript.read(bootScript);
        return new AgentUserData.Workload(labels, script, declared);
    }

    /** The ports an EC2 instance's agent listens on, which no service may declare. */
    private static Map<Integer, String> reservedPorts(int grpcPort, boolean servesSsh) {
        Map<Integer, String> reserved = new TreeMap<>();
        reserved.put(grpcPort, "the agent's own gRPC port (--grpc-port)");
        if (servesSsh) {
            reserved.putIfAbsent(22, "the agent's SSH server's port");
        }
        return reserved;
    }

    /** Each role is one mount point (/mnt/ROLE): a second volume of a role could only fail on the instance. */
    private void refuseRepeatedRoles(List<VolumeSpec> vols) {
        Map<String, List<String>> byRole = new TreeMap<>();
        for (int i = 0; i < vols.size(); i++) {
            byRole.computeIfAbsent(vols.get(i).role(), r -> new ArrayList<>()).add(volumes.get(i));
        }
        byRole.forEach((r, given) -> {
            if (given.size() > 1) {
                throw new KilnException(ExitCodes.USAGE, "--volume gives the role '" + r + "' " + given.size() + " times ("
                        + String.join(", ", given) + "); an instance mounts one volume per role, at /mnt/" + r
                        + "; nothing was launched: give each role once");
            }
        });
    }

    /** The template's snapshot schedules, as the agent's {@code kiln.schedules}. */
    private List<Map<String, Object>> schedules = List.of();

    private Map<String, Object> scheduleSettings() {
        return schedules.isEmpty() ? Map.of() : Map.of("schedules", schedules);
    }

    /** The volumes with --keep-volume's roles marked to keep; a role no --volume gives is refused. */
    private List<VolumeSpec> kept(List<VolumeSpec> vols) {
        for (String r : keepVolumes) {
            if (vols.stream().noneMatch(v -> v.role().equals(r))) {
                throw new KilnException(ExitCodes.USAGE, "--keep-volume " + r + " names no volume of this launch (its volumes: "
                        + (vols.isEmpty() ? "none" : String.join(", ", vols.stream().map(VolumeSpec::role).toList()))
                        + "); add --volume " + r + ":SIZE (or :latest, :snap-ID, :vol-ID); nothing was launched");
            }
        }
        return vols.stream().map(v -> keepVolumes.contains(v.role()) ? v.kept() : v).toList();
    }

    /** Options the config.yml template named by --role gives, for those not given as flags. */
    private void applyTemplate() {
        Map<String, Object> t = context.settings().template(role).orElse(null);
        if (t == null) {
            return;
        }
        if (fleetOptions.provider == null && t.containsKey("provider")) {
            fleetOptions.provider = String.valueOf(t.get("provider"));
        }
        ami = ami != null ? ami : text(t, "ami");
        type = type != null ? type : text(t, "type");
        subnet = subnet != null ? subnet : text(t, "subnet");
        keyName = keyName != null ? keyName : text(t, "key-name");
        instanceProfile = instanceProfile != null ? instanceProfile : text(t, "instance-profile");
        if (!forever && t.containsKey("forever")) {
            String f = text(t, "forever");
            if (!"true".equals(f) && !"false".equals(f)) {
                throw new KilnException(ExitCodes.CONFIG, "template '" + role + "': forever must be true or false, not " + f);
            }
            if ("true".equals(f) && t.containsKey("ttl")) {
                throw new KilnException(ExitCodes.CONFIG, "template '" + role + "': forever: true and ttl contradict each other; give one");
            }
            // A template's forever yields to a --ttl flag.
            forever = "true".equals(f) && ttl == null;
        }
        ttl = ttl != null || forever ? ttl : text(t, "ttl");
        maxLifetime = maxLifetime != null ? maxLifetime : text(t, "max-lifetime");
        if (securityGroups.isEmpty()) {
            securityGroups.addAll(list(t, "security-group"));
        }
        if (volumes.isEmpty()) {
            volumes.addAll(list(t, "volume"));
        }
        if (bootProfiles.isEmpty()) {
            bootProfiles.addAll(list(t, "boot-profile"));
        }
        if (keepVolumes.isEmpty()) {
            keepVolumes.addAll(list(t, "keep-volume"));
        }
        bootTree = bootTree != null ? bootTree : text(t, "boot-tree");
        if (forwardPorts.isEmpty()) {
            for (String p : list(t, "forward-ports")) {
                try {
                    forwardPorts.add(Integer.parseInt(p.trim()));
                } catch (NumberFormatException e) {
                    throw new KilnException(ExitCodes.CONFIG, "template '" + role + "': forward-ports must be TCP port numbers, not '" + p + "'");
                }
            }
        }
        collection = collection != null ? collection : text(t, "collection");
        bootBuild |= Boolean.parseBoolean(String.valueOf(t.getOrDefault("boot-build", "false")));
        if (grpcPort == null && t.containsKey("grpc-port")) {
            grpcPort = Integer.parseInt(String.valueOf(t.get("grpc-port")));
        }
        schedules = dev.kiln.controller.fleet.LaunchSchedules.of(role, t.get("schedule"));
        if (bootScript == null && text(t, "boot-script") != null) {
            // A relative path in config.yml is relative to config.yml's directory, wherever kiln runs.
            bootScript = context.paths().configFile().toAbsolutePath().getParent().resolve(text(t, "boot-script"));
        }
        if (services.isEmpty() && t.get("services") != null) {
            Object v = t.get("services");
            templateServices = (v instanceof List<?> l ? l : List.of(v)).stream()
                    .map(e -> ServiceSpec.fromTemplate(e, role)).toList();
        }
        if (keepsAlive.isEmpty()) {
            keepsAlive.addAll(list(t, "service-keeps-alive"));
        }
        if (t.get("label") instanceof Map<?, ?> m) {
            Map<String, String> merged = new TreeMap<>();
            m.forEach((k, v) -> merged.put(String.valueOf(k), String.valueOf(v)));
            merged.putAll(labels); // flags win
            labels = merged;
        } else if (t.containsKey("label")) {
            throw new KilnException(ExitCodes.CONFIG, "template '" + role + "': label must be a map, e.g. label: {app: shop}");
        }
        context.err().println("kiln: using template '" + role + "' from " + context.paths().configFile());
    }

    private String text(Map<String, Object> t, String key) {
        Object v = t.get(key);
        if (v instanceof Map<?, ?> || v instanceof List<?>) {
            throw new KilnException(ExitCodes.CONFIG, "template '" + role + "': " + key + " must be a single value, not " + v);
        }
        return v == null ? null : String.valueOf(v);
    }

    private List<String> list(Map<String, Object> t, String key) {
        Object v = t.get(key);
        if (v == null) {
            return List.of();
        }
        if (v instanceof List<?> l) {
            return l.stream().map(String::valueOf).toList();
        }
        if (v instanceof Map<?, ?>) {
            throw new KilnException(ExitCodes.CONFIG, "template '" + role + "': " + key + " must be a value or a list, not a map");
        }
        return List.of(String.valueOf(v));
    }

    /**
     * The volumes in the launch's collection. The default is one fixed name, not the template's or
     * role's: a worker and the server that serves its builds are launched under different roles
     * and must find the same snapshots.
     */
    private List<VolumeSpec> inCollection(List<VolumeSpec> vols) {
        String name = collection != null ? collection : SnapshotPolicy.DEFAULT_COLLECTION;
        return vols.stream().map(v -> v.inCollection(name)).toList();
    }

    private String bootWorkTree(String workTree) {
        return bootTree == null ? workTree : workTree + "/" + bootTree;
    }

    /** The local provider: an agent process on this machine, its volumes under the state directory. */
    private void launchLocal(Duration lease, Duration cap, List<VolumeSpec> vols, boolean boot, int maxInstances, FleetCa ca,
                             ClientTls tls, AgentUserData.Workload workload) {
        List<String> ec2Only = new ArrayList<>();
        if (ami != null) {
            ec2Only.add("--ami");
        }
        if (type != null) {
            ec2Only.add("--type");
        }
        if (subnet != null) {
            ec2Only.add("--subnet");
        }
        if (!securityGroups.isEmpty()) {
            ec2Only.add("--security-group");
        }
        if (keyName != null) {
            ec2Only.add("--key-name");
        }
        if (instanceProfile != null) {
            ec2Only.add("--instance-profile");
        }
        if (!ec2Only.isEmpty()) {
            throw new KilnException(ExitCodes.USAGE, String.join(", ", ec2Only) + (ec2Only.size() == 1 ? " is" : " are")
                    + " for the ec2 provider; this launch is on the local provider (the default): add --provider ec2"
                    + " (or provider: ec2 in config.yml, or KILN_PROVIDER=ec2) to launch on EC2");
        }
        LocalProvider local = fleets.local().agentSettings(scheduleSettings())
                .agentJvm(context.env().get("AGENT_JAVA_OPTS"), context.env().get("KILN_NO_CDS").filter(v -> !v.isEmpty()).isEmpty());
        context.err().println("kiln: launching a local " + role + " (lease " + ttl + ")...");
        ManagedInstance m = local.launch(new LocalProvider.LaunchSpec(role, lease, cap, labels, vols, boot, bootProfiles, bootTree,
                workload, forwardPorts),
                maxInstances, LocalProvider.loopVolumes(context.env().get("KILN_LOCAL_VOLUMES").orElse(null)), ca, tls, AgentJar.locate(context.env()), Durations.parse(wait), s -> context.err().println("kiln: " + s));
        AgentEndpoint endpoint = fleetOptions.endpoint(context, m);
        context.err().println("kiln: agent on " + m.id() + " answers at " + endpoint);
        String expires;
        try (AgentClient client = clients.client(endpoint, context.timeout(null))) {
            expires = deadline(client.status());
        } catch (KilnException e) {
            // Launched all the same: say so, with the deadline the launch asked for.
            context.err().println("kiln: cannot ask the agent on " + m.id() + " for its deadline (" + e.getMessage()
                    + "); `kiln status --agent " + m.id() + "` shows it");
            expires = m.expiresAt() == null ? "" : "~" + m.expiresAt().truncatedTo(java.time.temporal.ChronoUnit.SECONDS);
        }
        printLaunched(m, expires);
    }

    /** The launched instance, as a one-row table on stdout (scripts take its id from the second line). */
    private void printLaunched(ManagedInstance m, String expires) {
        new Table("INSTANCE", "ROLE", "STATE", "ADDRESS", "EXPIRES").row(m.id(), m.role(), m.state(),
                String.valueOf(fleetOptions.endpoint(context, m)), expires).print(context.out());
    }

    /** The deadline the agent keeps (its lease started when it did, a little after the launch). */
    private static String deadline(StatusResponse status) {
        return status.getLease().getForever() ? "never" : StatusCommand.time(status.getLease().getDeadline());
    }

    /** The controller's SSH public key (from kiln init): the agent lets its holder push and pull. */
    private String readOwnerKey() {
        try {
            return java.nio.file.Files.readString(context.paths().sshPublicKey()).strip();
        } catch (java.io.IOException e) {
            throw new KilnException(ExitCodes.CONFIG, "cannot read " + context.paths().sshPublicKey() + " (" + e.getMessage()
                    + "); run `kiln init` first");
        }
    }

    /**
     * The certificate and key user data carries: a bootstrap certificate, valid from 5 minutes
     * before launch (clock skew) until 5 minutes after the launch's wait for the agent ends.
     * Whoever reads user data later finds a key no controller accepts any more: the agent has
     * replaced it with a key of its own at its enrollment, and the certificate has expired.
     */
    static IssuedCertificate bootstrapCertificate(FleetCa ca, String certName, Duration wait) {
        return bootstrapCertificate(ca, certName, wait, Instant.now());
    }

    static IssuedCertificate bootstrapCertificate(FleetCa ca, String certName, Duration wait, Instant now) {
        return ca.issueBootstrap(certName, List.of(certName), List.of(), now.minus(Duration.ofMinutes(5)),
                now.plus(wait).plus(Duration.ofMinutes(5)));
    }

    private Enroller enroller(FleetCa ca, ClientTls tls) {
        return new Enroller(ca, tls, context.paths().stateDir().resolve("enrolled"), AgentClients.LAUNCH_POLL);
    }

    /**
     * Enrolls the new agent's own key (a no-op once it has): the enrolled certificate carries the
     * name the controller verifies and lasts the instance's maximum lifetime and a day.
     */
    private void enroll(Enroller enroller, ManagedInstance m, AgentEndpoint endpoint, String certName, Duration cap) {
        Enroller.Result r = enroller.enroll(endpoint, m.id(), List.of(certName), List.of(),
                Instant.now().plus(cap).plus(Duration.ofDays(1)));
        if (r.enrolledNow()) {
            context.err().println("kiln: enrolled the agent's own key on " + m.id() + "; its bootstrap certificate is refused from now on");
        }
    }

    private StatusResponse awaitAgent(ManagedInstance m, Duration wait, ClientTls tls, Enroller enroller, String certName,
                                      Duration cap) {
        AgentEndpoint endpoint = fleetOptions.endpoint(context, m);
        if (endpoint == null) {
            throw new KilnException(ExitCodes.UNREACHABLE, m.id() + " has no " + context.settings().get("address", null).orElse("auto")
                    + " address; use --address private (through a VPN or bastion) or give it a public IP");
        }
        Instant giveUp = Instant.now().plus(wait);
        long dots = 0;
        KilnException last = null;
        while (Instant.now().isBefore(giveUp)) {
            try (AgentClient client = clients.client(endpoint, AgentClients.LAUNCH_POLL)) {
                enroll(enroller, m, endpoint, certName, cap);
                var s = client.status();
                context.err().println("kiln: agent " + s.getAgentVersion() + " on " + m.id() + " answers at " + endpoint);
                return s;
            } catch (KilnException e) {
                if (e.exitCode() == ExitCodes.REFUSED) {
                    throw e; // a refused enrollment does not get better by waiting
                }
                last = e;
            }
            if (++dots % 6 == 0) {
                context.err().println("kiln: still waiting for the agent on " + endpoint + " (" + last.getMessage() + ")");
                String state = fleetOptions.ec2(fleets).get(m.id()).state();
                if (!state.equals("pending") && !state.equals("running")) {
                    throw new KilnException(ExitCodes.FAILURE, m.id() + " is " + state + " and its agent never answered ("
                            + last.getMessage() + "); its console output (EC2 console, or aws ec2 get-console-output) shows"
                            + " the agent's start-up errors");
                }
            }
            try {
                Thread.sleep(1000);
            } catch (InterruptedException e) {
                // The agent has not answered: the launch must not report it as ready.
                Thread.currentThread().interrupt();
                throw new KilnException(ExitCodes.FAILURE, "interrupted while waiting for the agent on " + m.id() + " at "
                        + endpoint + "; the instance is running and ends by its lease, or `kiln terminate " + m.id()
                        + " --force`", e);
            }
        }
        throw new KilnException(ExitCodes.TIMEOUT, "the agent on " + m.id() + " did not answer at " + endpoint + " within "
                + Durations.format(wait) + (last == null ? "" : " (" + last.getMessage() + ")")
                + "; the instance is running and ends by its lease, or `kiln terminate " + m.id() + " --force`");
    }
}
