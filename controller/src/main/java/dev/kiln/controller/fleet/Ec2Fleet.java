package dev.kiln.controller.fleet;

import dev.kiln.controller.ExitCodes;
import dev.kiln.controller.KilnException;
import software.amazon.awssdk.awscore.exception.AwsServiceException;
import software.amazon.awssdk.core.exception.SdkException;
import software.amazon.awssdk.services.ec2.Ec2Client;
import software.amazon.awssdk.services.ec2.model.CreateSnapshotRequest;
import software.amazon.awssdk.services.ec2.model.DescribeImagesRequest;
import software.amazon.awssdk.services.ec2.model.DescribeInstancesRequest;
import software.amazon.awssdk.services.ec2.model.DescribeSnapshotsRequest;
import software.amazon.awssdk.services.ec2.model.DescribeVolumesRequest;
import software.amazon.awssdk.services.ec2.model.Filter;
import software.amazon.awssdk.services.ec2.model.HttpTokensState;
import software.amazon.awssdk.services.ec2.model.IamInstanceProfileSpecification;
import software.amazon.awssdk.services.ec2.model.Image;
import software.amazon.awssdk.services.ec2.model.Instance;
import software.amazon.awssdk.services.ec2.model.InstanceMetadataOptionsRequest;
import software.amazon.awssdk.services.ec2.model.ResourceType;
import software.amazon.awssdk.services.ec2.model.RunInstancesRequest;
import software.amazon.awssdk.services.ec2.model.ShutdownBehavior;
import software.amazon.awssdk.services.ec2.model.Snapshot;
import software.amazon.awssdk.services.ec2.model.Tag;
import software.amazon.awssdk.services.ec2.model.TagSpecification;
import software.amazon.awssdk.services.ec2.model.VolumeType;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.Base64;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;
import java.util.function.Consumer;
import java.util.function.Function;

/**
 * The EC2 side of the fleet: launching instances as Kiln wants them (IMDSv2 only, terminate on
 * shutdown, tagged, idempotent), finding them by tag, snapshots with retention, and the
 * controller-side backstop (reap). Talks to EC2 only; agents are reached over gRPC elsewhere.
 */
public final class Ec2Fleet implements Fleet {

    public static final String MANAGED = "kiln:managed";
    public static final String ROLE = "kiln:role";
    public static final String LABEL = "kiln:label:";
    public static final String EXPIRES_AT = "kiln:expires-at";
    public static final String CERT_NAME = "kiln:cert-name";
    public static final String GRPC_PORT = "kiln:grpc-port";
    public static final String VOLUME_ROLE = "kiln:volume-role";
    public static final String SOURCE_VOLUME = "kiln:source-volume";
    public static final String SOURCE_INSTANCE = "kiln:source-instance";
    public static final String BUILD_ID = "kiln:build-id";
    /** On a volume: the instance it was last attached to by `kiln launch` (set after AttachVolume). */
    public static final String INSTANCE = "kiln:instance";
    /** On a volume: {@code true} keeps it after its instance ends ({@code --keep-volume}). */
    public static final String KEEP = "kiln:keep";
    /**
     * On a volume: {@code ro} while every Kiln launch mounted it read-only, {@code rw} once one
     * mounted it writable (never set back): what "never written" rests on.
     */
    public static final String ACCESS = "kiln:access";
    /** On a volume kept because its data is not known to be safe: why. */
    public static final String UNSAVED = "kiln:unsaved";
    /** The expires-at of an instance launched with --forever. */
    public static final String NEVER = "never";
    /** The collection a volume belongs to (set at launch) and its snapshots carry: scopes retention and ROLE:latest. */
    public static final String COLLECTION = "kiln:collection";

    /** Device names handed to volumes in order: /dev/sdf, /dev/sdg, ... (hints only for the agent). */
    static final String DEVICES = "fghijklmnop";

    /**
     * Instance families on the Xen hypervisor: they show EBS volumes as /dev/xvd* block devices
     * with no NVMe serial, so the agent cannot tell which volume is which by id.
     */
    static final java.util.Set<String> XEN_FAMILIES = java.util.Set.of("t1", "t2", "m1", "m2", "m3", "m4", "c1", "c3", "c4",
            "r3", "r4", "i2", "i3", "d2", "h1", "x1", "x1e", "g2", "g3", "g3s", "p2", "p3", "f1", "cc2", "cr1", "hs1");

    /** The longest client token EC2 takes. */
    public static final int MAX_CLIENT_TOKEN = 64;

    private final Ec2Client ec2;
    private Duration runningTimeout = Duration.ofMinutes(10);
    private Duration pollInterval = Duration.ofSeconds(2);

    private Consumer<String> narrate = s -> System.err.println("kiln: " + s);

    public Ec2Fleet(Ec2Client ec2) {
        this.ec2 = ec2;
    }

    /** Where notes for the user go (e.g. a snapshot in error that ROLE:latest passes over): the CLI's stderr. */
    public Ec2Fleet narrate(Consumer<String> narrate) {
        this.narrate = narrate;
        return this;
    }

    /** How long a launch with volumes waits for its instance to run before it gives up (and deletes them). */
    public Ec2Fleet runningTimeout(Duration timeout) {
        this.runningTimeout = timeout;
        return this;
    }

    @Override
    public String provider() {
        return "ec2";
    }

    /**
     * What to launch.
     *
     * @param role            worker, server, or a template name
     * @param ami             an AMI id (ami-...), or a name pattern (newest match wins)
     * @param instanceType    e.g. c5.2xlarge
     * @param subnet          subnet id, or null for the default
     * @param securityGroups  security group ids
     * @param keyName         EC2 key pair, or null (none needed)
     * @param instanceProfile instance profile name, or null (the agent needs no AWS credentials)
     * @param ttl             the lease
     * @param labels          free-form labels (kiln:label:KEY tags)
     * @param volumes         volumes to create or restore
     * @param userData        the agent's settings, given the volumes as created (with their ids)
     * @param certName        the name in the agent's certificate
     * @param grpcPort        the agent's port
     * @param clientToken     idempotency token: a retried launch with the same token launches nothing new
     */
    public record LaunchSpec(String role, String ami, String instanceType, String subnet, List<String> securityGroups,
                             String keyName, String instanceProfile, Duration ttl, Map<String, String> labels,
                             List<VolumeSpec> volumes, Function<List<InstanceLayout.Volume>, String> userData, String certName, int grpcPort,
                             String clientToken) {
    }

    /** Whether a name is an EC2 instance id (i- and 8 or 17 hex digits). */
    public static boolean isInstanceId(String s) {
        return s.matches("i-([0-9a-f]{8}|[0-9a-f]{17})");
    }

    /** Resolves an AMI id or name pattern to an image id (the newest when a pattern matches several). */
    public String resolveAmi(String amiOrName) {
        try {
            if (amiOrName.startsWith("ami-")) {
                List<Image> images = ec2.describeImages(DescribeImagesRequest.builder().imageIds(amiOrName).build()).images();
                if (images.isEmpty()) {
                    throw new KilnException(ExitCodes.NOT_FOUND, "AMI " + amiOrName + " not found in this region");
                }
                return amiOrName;
            }
            // Only this account's images: anyone can publish a public AMI named like ours.
            List<Image> images = ec2.describeImages(DescribeImagesRequest.builder().owners("self")
                    .filters(Filter.builder().name("name").values(amiOrName).build()).build()).images();
            return images.stream().max(Comparator.comparing(i -> i.creationDate() == null ? "" : i.creationDate()))
                    .map(Image::imageId)
                    .orElseThrow(() -> new KilnException(ExitCodes.NOT_FOUND, "no AMI named like '" + amiOrName
                            + "' owned by this account in this region (build one with packer/, or pass --ami ami-...)"));
        } catch (SdkException e) {
            throw AwsErrors.translate(e, "looking up AMI " + amiOrName);
        }
    }

    @Override
    public List<FleetSnapshot> snapshots(String volumeRole) {
        return ec2Snapshots(volumeRole).stream().map(Ec2Fleet::fleetSnapshot).toList();
    }

    private static FleetSnapshot fleetSnapshot(Snapshot s) {
        return new FleetSnapshot(s.snapshotId(), tag(s.tags(), VOLUME_ROLE), s.stateAsString(),
                s.progress() == null ? "" : s.progress(), s.volumeSize() == null ? 0 : s.volumeSize(), s.startTime(),
                tag(s.tags(), SOURCE_INSTANCE), tag(s.tags(), BUILD_ID), "true".equals(tag(s.tags(), MANAGED)),
                tag(s.tags(), COLLECTION));
    }

    /**
     * One snapshot, described by its id (not by listing every Kiln snapshot); empty while EC2 does
     * not know it, which happens for a moment after CreateSnapshot (its API is eventually consistent).
     */
    @Override
    public Optional<FleetSnapshot> snapshot(String id) {
        try {
            return ec2.describeSnapshots(DescribeSnapshotsRequest.builder().snapshotIds(id).build()).snapshots().stream()
                    .findFirst().map(Ec2Fleet::fleetSnapshot);
        } catch (SdkException e) {
            if (e instanceof AwsServiceException a && a.awsErrorDetails() != null
                    && "InvalidSnapshot.NotFound".equals(a.awsErrorDetails().errorCode())) {
                return Optional.empty();
            }
            throw AwsErrors.translate(e, "describing snapshot " + id);
        }
    }

    private static String tag(List<Tag> tags, String key) {
        return tags.stream().filter(t -> t.key().equals(key)).map(Tag::value).findFirst().orElse("");
    }

    /** Kiln's snapshots (of one volume role, or all when null), newest first, as EC2 describes them. */
    public List<Snapshot> ec2Snapshots(String volumeRole) {
        List<Filter> filters = new ArrayList<>(List.of(Filter.builder().name("tag:" + MANAGED).values("true").build()));
        if (volumeRole != null) {
            filters.add(Filter.builder().name("tag:" + VOLUME_ROLE).values(volumeRole).build());
        }
        try {
            List<Snapshot> all = new ArrayList<>(ec2.describeSnapshotsPaginator(DescribeSnapshotsRequest.builder()
                    .ownerIds("self").filters(filters).build()).snapshots().stream().toList());
            all.sort(Comparator.comparing(Snapshot::startTime).reversed());
            return all;
        } catch (SdkException e) {
            throw AwsErrors.translate(e, "listing snapshots");
        }
    }

    @Override
    public List<ManagedInstance> list(List<String> states) {
        List<Filter> filters = new ArrayList<>(List.of(Filter.builder().name("tag:" + MANAGED).values("true").build()));
        filters.add(Filter.builder().name("instance-state-name").values(states.isEmpty()
                ? List.of("pending", "running", "stopping", "stopped", "shutting-down") : states).build());
        try {
            List<ManagedInstance> out = new ArrayList<>();
            ec2.describeInstancesPaginator(DescribeInstancesRequest.builder().filters(filters).build())
                    .reservations().forEach(r -> r.instances().forEach(i -> out.add(managed(i))));
            out.sort(Comparator.comparing(ManagedInstance::launchTime));
            return out;
        } catch (SdkException e) {
            throw AwsErrors.translate(e, "listing instances");
        }
    }

    @Override
    public ManagedInstance get(String id) {
        try {
            List<Instance> found = describeInstance(id);
            if (found.isEmpty()) {
                throw new KilnException(ExitCodes.NOT_FOUND, "no instance " + id);
            }
            Instance i = found.get(0);
            if (i.tags().stream().noneMatch(t -> t.key().equals(MANAGED) && t.value().equals("true"))) {
                throw new KilnException(ExitCodes.REFUSED, "instance " + id + " is not managed by Kiln (no " + MANAGED
                        + " tag); Kiln leaves it alone");
            }
            return managed(i);
        } catch (SdkException e) {
            throw AwsErrors.translate(e, "looking up instance " + id);
        }
    }

    /**
     * The instance by id. An instance launched a moment ago may be InvalidInstanceID.NotFound
     * for a few seconds (eventual consistency): that is retried briefly before it counts.
     */
    private List<Instance> describeInstance(String id) {
        Instant giveUp = Instant.now().plus(Duration.ofSeconds(5));
        while (true) {
            try {
                return ec2.describeInstances(DescribeInstancesRequest.builder().instanceIds(id).build())
                        .reservations().stream().flatMap(r -> r.instances().stream()).toList();
            } catch (software.amazon.awssdk.awscore.exception.AwsServiceException e) {
                if (!notFound(e) || Instant.now().isAfter(giveUp)) {
                    throw e;
                }
            }
            pause("looking up " + id);
        }
    }

    /**
     * Launches one instance. Refuses when {@code maxInstances} managed instances already run.
     *
     * @return the instance as EC2 reported it at launch
     */
    public ManagedInstance launch(LaunchSpec spec, int maxInstances) {
        return launch(spec, maxInstances, Instant.now());
    }

    /**
     * Launches one instance whose lease counts from {@code startedAt}: a retry under the same
     * client token passes the first attempt's start, so its tags (kiln:expires-at) match exactly.
     */
    public ManagedInstance launch(LaunchSpec spec, int maxInstances, Instant startedAt) {
        refuseXen(spec.instanceType());
        refuseAtCap(maxInstances);
        String ami = resolveAmi(spec.ami());
        // No ttl: --forever, no deadline.
        Instant expiresAt = spec.ttl() == null ? null : startedAt.plus(spec.ttl()).truncatedTo(java.time.temporal.ChronoUnit.SECONDS);

        if (spec.volumes().size() > DEVICES.length()) {
            throw new KilnException(ExitCodes.USAGE, "at most " + DEVICES.length() + " volumes per instance");
        }
        // The user data, written once before anything is created with volume ids as long as EC2's:
        // one EC2 would refuse (too large) is refused here, at no cost.
        spec.userData().apply(placeholders(spec.volumes()));
        // Snapshots are resolved before anything is created, so a missing one costs nothing.
        List<String> snapshotIds = new ArrayList<>();
        String existingZone = existingVolumesZone(spec);
        for (VolumeSpec v : spec.volumes()) {
            if (!v.latest()) {
                snapshotIds.add(v.snapshotId());
                continue;
            }
            snapshotIds.add(resolveLatest(v, narrate).id());
        }
        // Volumes are created before the instance, so user data can name them by id: the agent
        // then mounts exactly these volumes, whatever device names the instance type gives them.
        List<InstanceLayout.Volume> created = new ArrayList<>();
        String zone;
        List<String> attachedBefore;
        try {
            zone = existingZone != null ? existingZone
                    : spec.volumes().isEmpty() && spec.subnet() != null ? null : zone(spec.subnet(), spec.instanceType());
            for (int i = 0; i < spec.volumes().size(); i++) {
                VolumeSpec v = spec.volumes().get(i);
                String snapshot = snapshotIds.get(i);
                if (v.existing()) {
                    // Attached as it is: formatted only if the agent proves it blank (never by created-empty).
                    created.add(new InstanceLayout.Volume(v.role(), v.volumeId(), "/dev/sd" + DEVICES.charAt(i), true, false));
                    continue;
                }
                boolean readOnly = InstanceLayout.readOnly(spec.role(), created(v, "", "", snapshot));
                List<Tag> volumeTags = new ArrayList<>(List.of(tag(MANAGED, "true"), tag(ROLE, spec.role()),
                        tag(VOLUME_ROLE, v.role()), tag(COLLECTION, v.collection()), tag("Name", "kiln-" + v.role()),
                        tag(ACCESS, readOnly ? "ro" : "rw")));
                if (v.keep()) {
                    volumeTags.add(tag(KEEP, "true"));
                }
                var create = software.amazon.awssdk.services.ec2.model.CreateVolumeRequest.builder()
                        .availabilityZone(zone).volumeType(VolumeType.GP3).encrypted(true)
                        .clientToken(subToken(spec.clientToken(), Integer.toString(i)))
                        .tagSpecifications(TagSpecification.builder().resourceType(ResourceType.VOLUME).tags(volumeTags).build());
                if (snapshot != null) {
                    create.snapshotId(snapshot);
                }
                if (v.sizeGiB() > 0) {
                    create.size(v.sizeGiB());
                }
                String id = ec2.createVolume(create.build()).volumeId();
                created.add(created(v, id, "/dev/sd" + DEVICES.charAt(i), snapshot));
            }
            attachedBefore = awaitVolumes(fresh(created, spec), spec.clientToken());
        } catch (SdkException e) {
            deleteNew(fresh(created, spec));
            throw AwsErrors.translate(e, "creating volumes for a " + spec.role());
        } catch (RuntimeException e) {
            deleteNew(fresh(created, spec));
            throw e;
        }

        // From here until every volume is attached, any failure (an error, a timeout, an
        // interrupt, the JVM shutting down on Ctrl-C) deletes the volumes not yet attached,
        // never an existing one.
        VolumeGuard guard = new VolumeGuard(fresh(created, spec));
        attachedBefore.forEach(guard::attached); // a retry's volumes, already in use: never this attempt's to delete
        try {
            ManagedInstance up = runAndAttach(spec, ami, zone, expiresAt, created, guard);
            guard.done();
            return up;
        } catch (SdkException e) {
            throw guard.cleanUp(AwsErrors.translate(e, "launching a " + spec.role()));
        } catch (KilnException e) {
            throw guard.cleanUp(e);
        } catch (RuntimeException | Error e) {
            guard.cleanUp(null);
            throw e;
        }
    }

    /** RunInstances, then (with volumes) the wait until it runs and the attachments. */
    private ManagedInstance runAndAttach(LaunchSpec spec, String ami, String zone, Instant expiresAt,
                                         List<InstanceLayout.Volume> created, VolumeGuard guard) {
        // The user data cannot be written when it is more than EC2 takes: then the guard deletes the volumes.
        String userData = spec.userData().apply(created);
        // Before it can be mounted writable, an existing volume says so (the tag is never set back to ro).
        for (int i = 0; i < created.size(); i++) {
            if (spec.volumes().get(i).existing()) {
                prepareExisting(spec, spec.volumes().get(i), created.get(i));
            }
        }

        List<Tag> instanceTags = new ArrayList<>(List.of(tag(MANAGED, "true"), tag(ROLE, spec.role()),
                tag(EXPIRES_AT, expiresAt == null ? NEVER : expiresAt.toString()), tag(CERT_NAME, spec.certName()),
                tag(GRPC_PORT, Integer.toString(spec.grpcPort())), tag("Name", "kiln-" + spec.role())));
        new TreeMap<>(spec.labels()).forEach((k, v) -> instanceTags.add(tag(LABEL + k, v)));
        List<TagSpecification> tagSpecs = new ArrayList<>(List.of(
                TagSpecification.builder().resourceType(ResourceType.INSTANCE).tags(instanceTags).build()));

        RunInstancesRequest.Builder run = RunInstancesRequest.builder()
                .imageId(ami).instanceType(spec.instanceType()).minCount(1).maxCount(1)
                .clientToken(spec.clientToken())
                .metadataOptions(InstanceMetadataOptionsRequest.builder().httpTokens(HttpTokensState.REQUIRED)
                        .httpPutResponseHopLimit(1).build())
                .instanceInitiatedShutdownBehavior(ShutdownBehavior.TERMINATE)
                .userData(Base64.getEncoder().encodeToString(userData.getBytes(StandardCharsets.UTF_8)))
                .tagSpecifications(tagSpecs);
        if (zone != null) {
            run.placement(p -> p.availabilityZone(zone));
        }
        if (spec.subnet() != null) {
            run.subnetId(spec.subnet());
        }
        if (!spec.securityGroups().isEmpty()) {
            run.securityGroupIds(spec.securityGroups());
        }
        if (spec.keyName() != null) {
            run.keyName(spec.keyName());
        }
        if (spec.instanceProfile() != null) {
            run.iamInstanceProfile(IamInstanceProfileSpecification.builder().name(spec.instanceProfile()).build());
        }
        Instance launched = ec2.runInstances(run.build()).instances().get(0);
        if (created.isEmpty()) {
            return managed(launched);
        }
        // EC2 attaches volumes only to a running (or stopped) instance.
        ManagedInstance up;
        try {
            up = awaitRunning(launched.instanceId(), runningTimeout);
        } catch (KilnException e) {
            throw new KilnException(e.exitCode(), e.getMessage() + "; " + launched.instanceId() + " ends by its lease, or"
                    + " `kiln terminate " + launched.instanceId() + " --force`", e);
        }
        for (int i = 0; i < created.size(); i++) {
            InstanceLayout.Volume v = created.get(i);
            try {
                attach(launched.instanceId(), v);
                guard.attached(v.volumeId());
            } catch (SdkException e) {
                throw AwsErrors.translate(e, "attaching " + v.volumeId() + " (" + v.role() + ") to " + launched.instanceId()
                        + "; the instance runs and its agent reports the missing volume; it ends by its lease, or"
                        + " `kiln terminate " + launched.instanceId() + "`");
            }
            recordAttachment(launched.instanceId(), spec, spec.volumes().get(i), v);
        }
        return up;
    }

    /** The volumes this launch creates (not the existing ones it attaches), in order. */
    private static List<InstanceLayout.Volume> fresh(List<InstanceLayout.Volume> created, LaunchSpec spec) {
        List<InstanceLayout.Volume> out = new ArrayList<>();
        for (int i = 0; i < created.size(); i++) {
            if (!spec.volumes().get(i).existing()) {
                out.add(created.get(i));
            }
        }
        return out;
    }

    /**
     * Checks the existing volumes a launch attaches, before anything is created, and returns their
     * availability zone (null when there are none): each must exist, be Kiln's, be available, and
     * all lie in one zone, which {@code --subnet} must not contradict.
     */
    private String existingVolumesZone(LaunchSpec spec) {
        List<String> ids = spec.volumes().stream().filter(VolumeSpec::existing).map(VolumeSpec::volumeId).toList();
        if (ids.isEmpty()) {
            return null;
        }
        Map<String, software.amazon.awssdk.services.ec2.model.Volume> byId = new LinkedHashMap<>();
        for (String id : ids) {
            describeVolume(id).ifPresentOrElse(v -> byId.put(id, v), () -> {
                throw new KilnException(ExitCodes.NOT_FOUND, "no volume " + id + " in this region (`kiln volumes --fleet`"
                        + " lists the fleet's volumes); nothing was launched");
            });
        }
        String zone = null;
        String zoneOf = null;
        for (var v : byId.values()) {
            if (!"true".equals(tag(v.tags(), MANAGED))) {
                throw new KilnException(ExitCodes.REFUSED, v.volumeId() + " is not Kiln's (no " + MANAGED + "=true tag): Kiln"
                        + " attaches and deletes only its own volumes; to hand it to Kiln, tag it " + MANAGED + "=true as a user"
                        + " allowed to; nothing was launched");
            }
            if (!v.attachments().isEmpty() || !"available".equals(v.stateAsString())) {
                String by = v.attachments().isEmpty() ? "" : v.attachments().get(0).instanceId();
                throw new KilnException(ExitCodes.REFUSED, v.volumeId() + " is " + (by.isEmpty() ? v.stateAsString()
                        : "in use by " + by + "; a volume is attached to one instance at a time: end that one first (`kiln terminate "
                        + by + "`; a kept volume stays)") + "; nothing was launched");
            }
            if (zone != null && !zone.equals(v.availabilityZone())) {
                throw new KilnException(ExitCodes.REFUSED, zoneOf + " is in " + zone + " and " + v.volumeId() + " in "
                        + v.availabilityZone() + "; an instance attaches volumes of its own availability zone only; nothing was launched");
            }
            zone = v.availabilityZone();
            zoneOf = v.volumeId();
        }
        if (spec.subnet() != null) {
            String subnetZone = zone(spec.subnet(), spec.instanceType());
            if (!subnetZone.equals(zone)) {
                throw new KilnException(ExitCodes.REFUSED, "--subnet " + spec.subnet() + " is in " + subnetZone + ", but "
                        + zoneOf + " is in " + zone + ": an instance attaches volumes of its own availability zone only; give a"
                        + " subnet in " + zone + ", or leave out --subnet (the launch then picks " + zone + "); nothing was launched");
            }
        }
        return zone;
    }

    /** One volume by id, or empty when EC2 does not know it. */
    private Optional<software.amazon.awssdk.services.ec2.model.Volume> describeVolume(String id) {
        try {
            return ec2.describeVolumes(r -> r.volumeIds(id)).volumes().stream().findFirst();
        } catch (AwsServiceException e) {
            if (notFound(e)) {
                return Optional.empty();
            }
            throw AwsErrors.translate(e, "describing volume " + id);
        } catch (SdkException e) {
            throw AwsErrors.translate(e, "describing volume " + id);
        }
    }

    /**
     * Tags an existing volume for this launch before it is attached: writable from now on unless
     * this launch mounts it read-only and it never was written, kept when asked, no longer flagged
     * unsaved (its fate is decided again when this instance ends).
     */
    private void prepareExisting(LaunchSpec spec, VolumeSpec vs, InstanceLayout.Volume v) {
        String before = describeVolume(v.volumeId()).map(x -> tag(x.tags(), ACCESS)).orElse("");
        boolean readOnly = InstanceLayout.readOnly(spec.role(), v) && "ro".equals(before);
        List<Tag> tags = new ArrayList<>(List.of(tag(ACCESS, readOnly ? "ro" : "rw")));
        if (vs.keep()) {
            tags.add(tag(KEEP, "true"));
        }
        ec2.createTags(t -> t.resources(v.volumeId()).tags(tags));
        ec2.deleteTags(t -> t.resources(v.volumeId()).tags(Tag.builder().key(UNSAVED).build()));
    }

    /**
     * Marks a Kiln volume as mounted writable ({@value #ACCESS}=rw) before `kiln mount` mounts it
     * so; a volume that is not Kiln's is left alone (its fate is never Kiln's to decide).
     */
    public void markWritable(String volumeId) {
        Optional<software.amazon.awssdk.services.ec2.model.Volume> v = describeVolume(volumeId);
        if (v.isPresent() && "true".equals(tag(v.get().tags(), MANAGED)) && !"rw".equals(tag(v.get().tags(), ACCESS))) {
            try {
                ec2.createTags(t -> t.resources(volumeId).tags(tag(ACCESS, "rw")));
            } catch (SdkException e) {
                throw AwsErrors.translate(e, "marking " + volumeId + " as mounted writable (" + ACCESS + "=rw) before mounting it");
            }
        }
    }

    /** Records on a volume the instance it is now attached to, which reap and terminate read when that instance has ended. */
    private void recordAttachment(String instanceId, LaunchSpec spec, VolumeSpec vs, InstanceLayout.Volume v) {
        try {
            ec2.createTags(t -> t.resources(v.volumeId()).tags(tag(INSTANCE, instanceId)));
        } catch (SdkException e) {
            narrate.accept("could not tag " + v.volumeId() + " with " + INSTANCE + "=" + instanceId + " (" + e.getMessage()
                    + "); when the instance ends, kiln reap leaves it as it is and `kiln volume rm` deletes it");
        }
    }

    @Override
    public List<StoredVolume> storedVolumes() {
        try {
            List<StoredVolume> out = new ArrayList<>();
            ec2.describeVolumesPaginator(r -> r.filters(Filter.builder().name("tag:" + MANAGED).values("true").build()))
                    .volumes().forEach(v -> out.add(stored(v)));
            out.sort(Comparator.comparing((StoredVolume v) -> v.created() == null ? Instant.EPOCH : v.created()));
            return out;
        } catch (SdkException e) {
            throw AwsErrors.translate(e, "listing volumes");
        }
    }

    private static StoredVolume stored(software.amazon.awssdk.services.ec2.model.Volume v) {
        String by = v.attachments().isEmpty() ? null : v.attachments().get(0).instanceId();
        return new StoredVolume(v.volumeId(), tag(v.tags(), VOLUME_ROLE), v.size() == null ? 0 : v.size(), by, v.createTime(),
                "true".equals(tag(v.tags(), KEEP)), tag(v.tags(), UNSAVED), "true".equals(tag(v.tags(), MANAGED)));
    }

    @Override
    public String deleteVolume(String volumeId, boolean force) {
        var v = describeVolume(volumeId).orElseThrow(() -> new KilnException(ExitCodes.NOT_FOUND, "no volume " + volumeId
                + " in this region (`kiln volumes --fleet` lists the fleet's volumes)"));
        if (!v.attachments().isEmpty() || !"available".equals(v.stateAsString())) {
            String by = v.attachments().isEmpty() ? "" : v.attachments().get(0).instanceId();
            throw new KilnException(ExitCodes.REFUSED, volumeId + " is " + (by.isEmpty() ? v.stateAsString()
                    : "in use by " + by + "; end it first (`kiln terminate " + by + "`), then delete the volume")
                    + "; nothing was deleted");
        }
        if (!"true".equals(tag(v.tags(), MANAGED)) && !force) {
            throw new KilnException(ExitCodes.REFUSED, volumeId + " was not created by Kiln (no " + MANAGED + "=true tag); look"
                    + " at it, and add --force to delete it all the same (with an identity allowed to); nothing was deleted");
        }
        try {
            ec2.deleteVolume(d -> d.volumeId(volumeId));
        } catch (SdkException e) {
            throw AwsErrors.translate(e, "deleting volume " + volumeId);
        }
        String role = tag(v.tags(), VOLUME_ROLE);
        String unsaved = tag(v.tags(), UNSAVED);
        return "deleted " + volumeId + (role.isEmpty() ? "" : " (" + role + ")") + (unsaved.isEmpty() ? "" : "; it was unsaved: " + unsaved);
    }

    /**
     * Waits (up to {@code wait}) until an instance has terminated and its volumes are detached,
     * then applies the data-safe rule to those Kiln attached to it ({@link #fate}).
     *
     * @return one line per volume; or one saying that {@code kiln reap} decides later
     */
    public List<String> endVolumes(String instanceId, Duration wait) {
        Instant giveUp = Instant.now().plus(wait);
        while (true) {
            String state = describeInstance(instanceId).stream().findFirst()
                    .map(i -> i.state() == null ? "" : i.state().nameAsString()).orElse("terminated");
            List<software.amazon.awssdk.services.ec2.model.Volume> mine = attachedBy(instanceId);
            if (state.equals("terminated") && mine.stream().allMatch(v -> v.attachments().isEmpty())) {
                List<String> out = new ArrayList<>();
                for (var v : mine) {
                    out.add(apply(v, fate(v, instanceId), false));
                }
                return out;
            }
            if (Instant.now().isAfter(giveUp)) {
                return List.of(instanceId + " is " + state + " after " + wait.toSeconds() + "s; `kiln reap` decides what becomes"
                        + " of its volumes once it has ended");
            }
            pause("waiting for " + instanceId + " to end");
        }
    }

    /** Kiln's volumes whose kiln:instance tag names this instance. */
    private List<software.amazon.awssdk.services.ec2.model.Volume> attachedBy(String instanceId) {
        try {
            return ec2.describeVolumes(r -> r.filters(Filter.builder().name("tag:" + MANAGED).values("true").build(),
                    Filter.builder().name("tag:" + INSTANCE).values(instanceId).build())).volumes();
        } catch (SdkException e) {
            throw AwsErrors.translate(e, "listing the volumes of " + instanceId);
        }
    }

    @Override
    public List<String> reapVolumes(boolean dryRun) {
        List<String> out = new ArrayList<>();
        Map<String, String> states = new java.util.HashMap<>();
        for (var v : ec2Volumes()) {
            if (!v.attachments().isEmpty() || !"available".equals(v.stateAsString())) {
                continue;
            }
            String instance = tag(v.tags(), INSTANCE);
            String name = v.volumeId() + (tag(v.tags(), VOLUME_ROLE).isEmpty() ? "" : " (" + tag(v.tags(), VOLUME_ROLE) + ")");
            if (instance.isEmpty()) {
                out.add("left " + name + ": no instance of Kiln's was ever recorded on it (a launch cut short, or one under way);"
                        + " `kiln volume rm " + v.volumeId() + "` deletes it");
                continue;
            }
            String state = states.computeIfAbsent(instance, id -> describeInstance(id).stream().findFirst()
                    .map(i -> i.state() == null ? "" : i.state().nameAsString()).orElse("terminated"));
            if (!state.equals("terminated")) {
                out.add("left " + name + ": its instance " + instance + " is " + state);
                continue;
            }
            if (!tag(v.tags(), UNSAVED).isEmpty() || "true".equals(tag(v.tags(), KEEP))) {
                continue; // decided when its instance ended; `kiln volumes --fleet` shows it
            }
            out.add(apply(v, fate(v, instance), dryRun));
        }
        return out;
    }

    private List<software.amazon.awssdk.services.ec2.model.Volume> ec2Volumes() {
        try {
            List<software.amazon.awssdk.services.ec2.model.Volume> all = new ArrayList<>();
            ec2.describeVolumesPaginator(r -> r.filters(Filter.builder().name("tag:" + MANAGED).values("true").build()))
                    .volumes().forEach(all::add);
            return all;
        } catch (SdkException e) {
            throw AwsErrors.translate(e, "listing volumes");
        }
    }

    /**
     * The data-safe rule on EC2, for a Kiln volume whose instance has ended: kept when marked to
     * keep; deleted when no Kiln launch ever mounted it writable ({@value #ACCESS}=ro) and it was
     * created blank or restored from a Kiln snapshot that still exists, completed; otherwise kept
     * and flagged unsaved. EBS shows no write times, so a volume once mounted writable is never
     * taken for unchanged since its last snapshot (docs/aws.md, section 7).
     */
    VolumeFateDecision fate(software.amazon.awssdk.services.ec2.model.Volume v, String instanceId) {
        if ("true".equals(tag(v.tags(), KEEP))) {
            return new VolumeFateDecision(false, "marked to keep");
        }
        String access = tag(v.tags(), ACCESS);
        String from = v.snapshotId() == null ? "" : v.snapshotId();
        if (access.equals("ro")) {
            if (from.isEmpty()) {
                return new VolumeFateDecision(true, "created blank and only ever mounted read-only");
            }
            Optional<FleetSnapshot> source = snapshot(from);
            if (source.isPresent() && source.get().managed() && "completed".equals(source.get().state())) {
                return new VolumeFateDecision(true, "never written (mounted read-only); all of it is in " + from);
            }
            return new VolumeFateDecision(false, "unsaved: restored from " + from + ", which is no longer a completed Kiln snapshot");
        }
        if (access.isEmpty()) {
            return new VolumeFateDecision(false, "unsaved: its history is unknown (no " + ACCESS + " tag: made by a Kiln that"
                    + " kept no record of its mounts)");
        }
        List<FleetSnapshot> own = new ArrayList<>();
        try {
            ec2.describeSnapshotsPaginator(r -> r.ownerIds("self").filters(
                            Filter.builder().name("tag:" + MANAGED).values("true").build(),
                            Filter.builder().name("volume-id").values(v.volumeId()).build()))
                    .snapshots().forEach(x -> own.add(fleetSnapshot(x)));
        } catch (SdkException e) {
            throw AwsErrors.translate(e, "listing the snapshots of " + v.volumeId());
        }
        Optional<FleetSnapshot> newest = own.stream().filter(x -> "completed".equals(x.state()))
                .max(Comparator.comparing(FleetSnapshot::startTime));
        return new VolumeFateDecision(false, "unsaved: mounted writable on " + instanceId + ", and EC2 shows no write times, so"
                + " Kiln cannot tell whether it was written after " + newest.map(x -> "its newest Kiln snapshot " + x.id()
                + " (" + x.startTime().truncatedTo(ChronoUnit.SECONDS) + ")").orElse("any snapshot (none of it exists)"));
    }

    /**
     * A fate on EC2.
     *
     * @param delete whether the volume goes
     * @param why    why, in the user's terms
     */
    record VolumeFateDecision(boolean delete, String why) {
    }

    /** Carries out a fate: deletes the volume, or flags it unsaved ({@value #UNSAVED} tag) and keeps it. */
    private String apply(software.amazon.awssdk.services.ec2.model.Volume v, VolumeFateDecision f, boolean dryRun) {
        String name = v.volumeId() + (tag(v.tags(), VOLUME_ROLE).isEmpty() ? "" : " (" + tag(v.tags(), VOLUME_ROLE) + ")");
        if (dryRun) {
            return (f.delete() ? "would delete " : "would keep ") + name + ": " + f.why();
        }
        try {
            if (f.delete()) {
                ec2.deleteVolume(d -> d.volumeId(v.volumeId()));
                return name + ": deleted: " + f.why();
            }
            if (f.why().startsWith("unsaved")) {
                ec2.createTags(t -> t.resources(v.volumeId()).tags(tag(UNSAVED, f.why().length() > 250
                        ? f.why().substring(0, 250) : f.why())));
            }
            return name + ": kept: " + f.why();
        } catch (SdkException e) {
            return name + ": left as it is (" + (f.delete() ? "deleting" : "flagging") + " it failed: " + e.getMessage() + ")";
        }
    }

    /**
     * Refuses an instance type on the Xen hypervisor before anything is created: Kiln finds its
     * volumes by the NVMe serial (the volume id) that Nitro instances show, which Xen ones lack.
     * Bare-metal types have no hypervisor and show NVMe volumes.
     */
    static void refuseXen(String instanceType) {
        if (instanceType == null || instanceType.endsWith(".metal")) {
            return;
        }
        String family = instanceType.substring(0, Math.max(0, instanceType.indexOf('.')));
        if (XEN_FAMILIES.contains(family)) {
            throw new KilnException(ExitCodes.USAGE, "instance type " + instanceType + " runs on the Xen hypervisor, which"
                    + " shows EBS volumes without the NVMe serial Kiln finds them by; use a Nitro type such as t3.micro,"
                    + " t3.small or c5.2xlarge (--type)");
        }
    }

    /**
     * A client token for one of the several requests of a launch (e.g. each CreateVolume),
     * derived from the launch's token so a retry sends the same one: {@code TOKEN-PART} while
     * that fits EC2's 64 characters, else a hash of both.
     */
    static String subToken(String token, String part) {
        String plain = token + "-" + part;
        if (plain.length() <= MAX_CLIENT_TOKEN) {
            return plain;
        }
        try {
            byte[] digest = java.security.MessageDigest.getInstance("SHA-256").digest(
                    (token + "\n" + part).getBytes(StandardCharsets.UTF_8));
            return "kiln-" + java.util.HexFormat.of().formatHex(digest).substring(0, MAX_CLIENT_TOKEN - 5);
        } catch (java.security.NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    /**
     * Waits until the volumes this launch asked for are available. Just after CreateVolume, EC2
     * may answer InvalidVolume.NotFound for a while (eventual consistency): that is retried. A
     * volume that a client token returned in use by an instance of another launch is refused.
     */
    private List<String> awaitVolumes(List<InstanceLayout.Volume> volumes, String clientToken) {
        if (volumes.isEmpty()) {
            return List.of();
        }
        List<String> ids = volumes.stream().map(InstanceLayout.Volume::volumeId).toList();
        Instant giveUp = Instant.now().plus(runningTimeout);
        while (true) {
            List<software.amazon.awssdk.services.ec2.model.Volume> found = List.of();
            try {
                found = ec2.describeVolumes(r -> r.volumeIds(ids)).volumes();
            } catch (software.amazon.awssdk.awscore.exception.AwsServiceException e) {
                if (!notFound(e)) {
                    throw e;
                }
            }
            boolean ready = found.size() == ids.size();
            List<String> inUse = new ArrayList<>();
            for (var v : found) {
                String state = v.stateAsString();
                if (state.equals("in-use")) {
                    String other = v.attachments().isEmpty() ? "" : v.attachments().get(0).instanceId();
                    if (!launchedWith(other, clientToken)) {
                        throw new KilnException(ExitCodes.REFUSED, "CreateVolume under client token " + clientToken
                                + " returned " + v.volumeId() + ", which is in use by " + other + " (not by this launch);"
                                + " launch with a new --client-token");
                    }
                    inUse.add(v.volumeId());
                } else if (state.equals("error") || state.equals("deleting") || state.equals("deleted")) {
                    throw new KilnException(ExitCodes.FAILURE, "volume " + v.volumeId() + " is " + state
                            + " instead of available; launch again (with a new --client-token if you gave one)");
                } else if (!state.equals("available")) {
                    ready = false;
                }
            }
            if (ready) {
                return inUse;
            }
            if (Instant.now().isAfter(giveUp)) {
                throw new KilnException(ExitCodes.TIMEOUT, "the volumes " + ids + " were not available within "
                        + runningTimeout.toSeconds() + "s");
            }
            pause("waiting for the volumes " + ids);
        }
    }

    /** Whether an instance exists and was launched with this client token (a retry of a launch that got this far). */
    private boolean launchedWith(String instanceId, String clientToken) {
        if (instanceId == null || instanceId.isEmpty()) {
            return false;
        }
        return ec2.describeInstances(r -> r.instanceIds(instanceId)).reservations().stream()
                .flatMap(r -> r.instances().stream()).anyMatch(i -> clientToken.equals(i.clientToken()));
    }

    /**
     * Attaches a volume, retrying while EC2 does not yet see the volume or the instance just
     * created (eventual consistency). A volume already attached to this instance (a retry under
     * the same client token) counts as attached.
     */
    private void attach(String instanceId, InstanceLayout.Volume v) {
        Instant giveUp = Instant.now().plus(Duration.ofMinutes(2));
        while (true) {
            try {
                ec2.attachVolume(a -> a.instanceId(instanceId).volumeId(v.volumeId()).device(v.device()));
                return;
            } catch (software.amazon.awssdk.awscore.exception.AwsServiceException e) {
                if ("VolumeInUse".equals(code(e)) && ec2.describeVolumes(r -> r.volumeIds(v.volumeId())).volumes().stream()
                        .flatMap(x -> x.attachments().stream()).anyMatch(a -> instanceId.equals(a.instanceId()))) {
                    return;
                }
                if (!notFound(e) || Instant.now().isAfter(giveUp)) {
                    throw e;
                }
            }
            pause("attaching " + v.volumeId());
        }
    }

    private static String code(software.amazon.awssdk.awscore.exception.AwsServiceException e) {
        return e.awsErrorDetails() == null || e.awsErrorDetails().errorCode() == null ? "" : e.awsErrorDetails().errorCode();
    }

    /** A NotFound that may only mean EC2 has not caught up with a create yet. */
    private static boolean notFound(software.amazon.awssdk.awscore.exception.AwsServiceException e) {
        return code(e).endsWith(".NotFound");
    }

    private void pause(String doing) {
        try {
            Thread.sleep(pollInterval.toMillis());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new KilnException(ExitCodes.FAILURE, "interrupted while " + doing, e);
        }
    }

    /**
     * The volumes of one launch until they are attached. If the launch fails, is interrupted, or
     * the JVM shuts down (Ctrl-C) first, the volumes not yet attached are deleted: nothing else
     * would ever use them. (A launch killed outright leaves them, tagged kiln:managed.)
     */
    private final class VolumeGuard {
        private final List<String> pending = new ArrayList<>();
        private final Thread hook;

        VolumeGuard(List<InstanceLayout.Volume> created) {
            created.forEach(v -> pending.add(v.volumeId()));
            hook = pending.isEmpty() ? null : new Thread(this::cleanUpQuietly, "kiln-launch-cleanup");
            if (hook != null) {
                try {
                    Runtime.getRuntime().addShutdownHook(hook);
                } catch (IllegalStateException shuttingDown) {
                    // already shutting down: the catch in launch() cleans up
                }
            }
        }

        synchronized void attached(String volumeId) {
            pending.remove(volumeId);
        }

        void done() {
            if (hook != null) {
                try {
                    Runtime.getRuntime().removeShutdownHook(hook);
                } catch (IllegalStateException shuttingDown) {
                    // the hook runs, and finds nothing pending
                }
            }
        }

        /** Deletes the volumes not yet attached; returns the failure, naming those it could not delete. */
        KilnException cleanUp(KilnException failure) {
            done();
            boolean any = !pending.isEmpty();
            List<String> left = cleanUpQuietly();
            if (failure == null || !any) {
                return failure;
            }
            if (left.isEmpty()) {
                return new KilnException(failure.exitCode(), failure.getMessage() + "; the volumes this launch created are"
                        + " deleted again", failure);
            }
            return new KilnException(failure.exitCode(), failure.getMessage() + "; the volumes " + left + " this launch"
                    + " created could not be deleted (tagged " + MANAGED + "=true): `aws ec2 delete-volume --volume-id ID`",
                    failure);
        }

        synchronized List<String> cleanUpQuietly() {
            List<String> left = deleteVolumes(pending);
            pending.clear();
            return left;
        }
    }

    /**
     * A volume this launch just created with CreateVolume: fresh, and created empty, when no
     * snapshot went into it (then, and only then, the user data vouches that it is blank).
     */
    /** The volumes as {@link #created} describes them, with made-up ids of the length EC2 gives. */
    static List<InstanceLayout.Volume> placeholders(List<VolumeSpec> volumes) {
        List<InstanceLayout.Volume> out = new ArrayList<>();
        for (int i = 0; i < volumes.size(); i++) {
            VolumeSpec v = volumes.get(i);
            out.add(created(v, "vol-" + "0".repeat(17), "/dev/sd" + DEVICES.charAt(i),
                    v.latest() || v.snapshotId() != null ? "snap-" + "0".repeat(17) : null));
        }
        return out;
    }

    /**
     * Warnings for the services' ports that the launch's security groups (or, with none given,
     * the VPC's default group) open to nobody; DescribeSecurityGroups only, nothing changes.
     */
    public List<String> closedServicePorts(List<String> securityGroups, String subnet, List<ServiceSpec> services) {
        return SecurityGroupPorts.warnings(ec2, securityGroups, subnet, services);
    }

    static InstanceLayout.Volume created(VolumeSpec spec, String volumeId, String device, String snapshotId) {
        boolean empty = snapshotId == null;
        return new InstanceLayout.Volume(spec.role(), volumeId, device, empty, empty);
    }

    /** The availability zone of a subnet, or (with none given) the zone {@link #defaultZone} chooses. */
    private String zone(String subnet, String instanceType) {
        if (subnet != null) {
            return ec2.describeSubnets(r -> r.subnetIds(subnet)).subnets().get(0).availabilityZone();
        }
        return defaultZone(instanceType);
    }

    /**
     * The zone for a launch into the default VPC: the first by name of the region's standard
     * availability zones (not Local or Wavelength zones, which DescribeAvailabilityZones may list
     * first) that are available, opted in, and offer the instance type.
     */
    private String defaultZone(String instanceType) {
        if (ec2.describeVpcs(r -> r.filters(Filter.builder().name("isDefault").values("true").build())).vpcs().isEmpty()) {
            throw new KilnException(ExitCodes.CONFIG, "this region has no default VPC, so a launch needs --subnet SUBNET_ID"
                    + " (or subnet: in the template): a subnet the controller can reach; see docs/aws.md");
        }
        List<String> zones = ec2.describeAvailabilityZones(r -> r.filters(
                        Filter.builder().name("zone-type").values("availability-zone").build(),
                        Filter.builder().name("state").values("available").build())).availabilityZones().stream()
                .filter(z -> z.optInStatus() == null || !"not-opted-in".equals(z.optInStatusAsString()))
                .map(software.amazon.awssdk.services.ec2.model.AvailabilityZone::zoneName).sorted().toList();
        java.util.Set<String> offered = new java.util.HashSet<>();
        ec2.describeInstanceTypeOfferingsPaginator(r -> r.locationType(
                        software.amazon.awssdk.services.ec2.model.LocationType.AVAILABILITY_ZONE)
                .filters(Filter.builder().name("instance-type").values(instanceType).build()))
                .instanceTypeOfferings().forEach(o -> offered.add(o.location()));
        return zones.stream().filter(offered::contains).findFirst().orElseThrow(() -> new KilnException(ExitCodes.REFUSED,
                "no standard availability zone of this region (" + String.join(", ", zones) + ") offers " + instanceType
                        + "; choose another --type, or a --subnet in a zone that offers it"));
    }

    /** Deletes volumes this launch created and nothing used (the launch failed before attaching them). */
    private void deleteNew(List<InstanceLayout.Volume> created) {
        deleteVolumes(created.stream().map(InstanceLayout.Volume::volumeId).toList());
    }

    /**
     * Deletes the volumes, retrying for a while when EC2 answers InvalidVolume.NotFound (a volume
     * just created may not be visible yet) or IncorrectState (still creating). Runs even in an
     * interrupted thread, which keeps its interrupt. Never deletes a volume in use.
     *
     * @return the volumes it could not delete
     */
    private List<String> deleteVolumes(java.util.Collection<String> volumeIds) {
        boolean interrupted = Thread.interrupted();
        List<String> left = new ArrayList<>();
        try {
            for (String id : volumeIds) {
                if (!deleteRetrying(id)) {
                    left.add(id);
                }
            }
        } finally {
            if (interrupted) {
                Thread.currentThread().interrupt();
            }
        }
        return left;
    }

    private boolean deleteRetrying(String volumeId) {
        for (int attempt = 0; attempt < 30; attempt++) {
            try {
                ec2.deleteVolume(d -> d.volumeId(volumeId));
                return true;
            } catch (software.amazon.awssdk.awscore.exception.AwsServiceException e) {
                if (!notFound(e) && !"IncorrectState".equals(code(e))) {
                    return false; // e.g. VolumeInUse: not this launch's to delete
                }
            } catch (SdkException e) {
                // EC2 unreachable for a moment: try again
            }
            try {
                Thread.sleep(1000);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return false;
            }
        }
        return false;
    }

    /**
     * Waits until EC2 reports the instance running, and returns it with its addresses. An
     * instance just launched may be InvalidInstanceID.NotFound for a while (eventual
     * consistency): that is retried until the timeout.
     */
    public ManagedInstance awaitRunning(String id, Duration timeout) {
        Instant giveUp = Instant.now().plus(timeout);
        String state = "not yet visible";
        while (true) {
            try {
                List<Instance> found = ec2.describeInstances(r -> r.instanceIds(id)).reservations().stream()
                        .flatMap(r -> r.instances().stream()).toList();
                if (!found.isEmpty()) {
                    Instance i = found.get(0);
                    state = i.state() == null ? "" : i.state().nameAsString();
                    if (state.equals("running")) {
                        return get(id);
                    }
                    if (!state.equals("pending")) {
                        throw new KilnException(ExitCodes.FAILURE, id + " is " + state + " instead of running"
                                + (i.stateReason() == null ? "" : " (" + i.stateReason().message() + ")"));
                    }
                }
            } catch (software.amazon.awssdk.awscore.exception.AwsServiceException e) {
                if (!notFound(e)) {
                    throw AwsErrors.translate(e, "waiting for " + id + " to run");
                }
            } catch (SdkException e) {
                if (Thread.currentThread().isInterrupted() || e instanceof software.amazon.awssdk.core.exception.AbortedException) {
                    throw new KilnException(ExitCodes.FAILURE, "interrupted while waiting for " + id + " to run", e);
                }
                throw AwsErrors.translate(e, "waiting for " + id + " to run");
            }
            if (!Instant.now().plus(pollInterval).isBefore(giveUp)) {
                throw new KilnException(ExitCodes.TIMEOUT, id + " was not running within " + timeout.toSeconds() + "s (it is "
                        + state + ")");
            }
            pause("waiting for " + id + " to run");
        }
    }

    @Override
    public List<FleetVolume> volumes(String instanceId) {
        try {
            // Only Kiln's volumes: the root volume (and any other) is attached too, and DescribeVolumes
            // lists them in no guaranteed order, so an untagged one could be taken for the work tree.
            return ec2.describeVolumes(DescribeVolumesRequest.builder()
                    .filters(Filter.builder().name("attachment.instance-id").values(instanceId).build(),
                            Filter.builder().name("tag:" + MANAGED).values("true").build()).build()).volumes()
                    .stream().map(v -> new FleetVolume(v.volumeId(), tag(v.tags(), VOLUME_ROLE), null, tag(v.tags(), COLLECTION)))
                    .toList();
        } catch (SdkException e) {
            throw AwsErrors.translate(e, "listing the volumes of " + instanceId);
        }
    }

    @Override
    public FleetSnapshot createSnapshot(FleetVolume volume, ManagedInstance instance, String buildId) {
        String volumeRole = volume.roleOrId();
        List<Tag> tags = new ArrayList<>(List.of(tag(MANAGED, "true"), tag(VOLUME_ROLE, volumeRole),
                tag(SOURCE_VOLUME, volume.id()), tag(SOURCE_INSTANCE, instance.id()), tag(ROLE, instance.role())));
        if (buildId != null && !buildId.isEmpty()) {
            tags.add(tag(BUILD_ID, buildId));
        }
        if (!volume.collection().isEmpty()) {
            tags.add(tag(COLLECTION, volume.collection()));
        }
        new TreeMap<>(instance.labels()).forEach((k, v) -> tags.add(tag(LABEL + k, v)));
        try {
            var r = ec2.createSnapshot(CreateSnapshotRequest.builder().volumeId(volume.id())
                    .description("kiln " + volumeRole + " of " + instance.id())
                    .tagSpecifications(TagSpecification.builder().resourceType(ResourceType.SNAPSHOT).tags(tags).build())
                    .build());
            return new FleetSnapshot(r.snapshotId(), volumeRole, r.stateAsString(), r.progress() == null ? "" : r.progress(),
                    r.volumeSize() == null ? 0 : r.volumeSize(), r.startTime(), instance.id(), buildId == null ? "" : buildId, true,
                    volume.collection());
        } catch (SdkException e) {
            throw AwsErrors.translate(e, "creating a snapshot of " + volume.id());
        }
    }

    @Override
    public void deleteSnapshot(FleetSnapshot s) {
        try {
            ec2.deleteSnapshot(d -> d.snapshotId(s.id()));
        } catch (SdkException e) {
            throw AwsErrors.translate(e, "deleting snapshot " + s.id());
        }
    }

    @Override
    public void terminate(List<String> ids) {
        if (ids.isEmpty()) {
            return;
        }
        ids.forEach(this::get); // refuses unmanaged ones
        try {
            ec2.terminateInstances(t -> t.instanceIds(ids));
        } catch (SdkException e) {
            throw AwsErrors.translate(e, "terminating " + ids);
        }
    }

    /**
     * Rewrites kiln:expires-at on a managed instance; the IAM policy in docs/aws.md allows this
     * one tag key, and only on Kiln's instances.
     */
    @Override
    public void recordDeadline(String id, Instant deadline) {
        get(id); // refuses unmanaged ones
        try {
            ec2.createTags(t -> t.resources(id).tags(tag(EXPIRES_AT, deadline.truncatedTo(ChronoUnit.SECONDS).toString())));
        } catch (SdkException e) {
            throw AwsErrors.translate(e, "tagging " + id + " with its new deadline");
        }
    }

    static ManagedInstance managed(Instance i) {
        Map<String, String> tags = new LinkedHashMap<>();
        i.tags().forEach(t -> tags.put(t.key(), t.value()));
        Map<String, String> labels = new TreeMap<>();
        tags.forEach((k, v) -> {
            if (k.startsWith(LABEL)) {
                labels.put(k.substring(LABEL.length()), v);
            }
        });
        Instant expires = null;
        try {
            expires = tags.containsKey(EXPIRES_AT) ? Instant.parse(tags.get(EXPIRES_AT)) : null;
        } catch (RuntimeException ignored) {
            // an edited tag: treat as unknown
        }
        int port = 7443;
        try {
            port = Integer.parseInt(tags.getOrDefault(GRPC_PORT, "7443"));
        } catch (NumberFormatException ignored) {
            // default port
        }
        return new ManagedInstance(i.instanceId(), tags.getOrDefault(ROLE, ""), labels,
                i.state() == null ? "" : i.state().nameAsString(), i.privateIpAddress(), i.publicIpAddress(), expires,
                tags.get(CERT_NAME), port, i.launchTime());
    }

    static Tag tag(String k, String v) {
        return Tag.builder().key(k).value(v).build();
    }
}
