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
    /** The collection a volume belongs to (set at launch) and its snapshots carry: scopes retention and ROLE:latest. */
    public static final String COLLECTION = "kiln:collection";

    /** Device names handed to volumes in order: /dev/sdf, /dev/sdg, ... (hints only for the agent). */
    static final String DEVICES = "fghijklmnop";

    private final Ec2Client ec2;

    private Consumer<String> narrate = s -> System.err.println("kiln: " + s);

    public Ec2Fleet(Ec2Client ec2) {
        this.ec2 = ec2;
    }

    /** Where notes for the user go (e.g. a snapshot in error that ROLE:latest passes over): the CLI's stderr. */
    public Ec2Fleet narrate(Consumer<String> narrate) {
        this.narrate = narrate;
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
            List<Instance> found = ec2.describeInstances(DescribeInstancesRequest.builder().instanceIds(id).build())
                    .reservations().stream().flatMap(r -> r.instances().stream()).toList();
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
     * Launches one instance. Refuses when {@code maxInstances} managed instances already run.
     *
     * @return the instance as EC2 reported it at launch
     */
    public ManagedInstance launch(LaunchSpec spec, int maxInstances) {
        refuseAtCap(maxInstances);
        String ami = resolveAmi(spec.ami());
        Instant expiresAt = Instant.now().plus(spec.ttl()).truncatedTo(java.time.temporal.ChronoUnit.SECONDS);

        if (spec.volumes().size() > DEVICES.length()) {
            throw new KilnException(ExitCodes.USAGE, "at most " + DEVICES.length() + " volumes per instance");
        }
        // Snapshots are resolved before anything is created, so a missing one costs nothing.
        List<String> snapshotIds = new ArrayList<>();
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
        try {
            zone = spec.volumes().isEmpty() ? null : zone(spec.subnet());
            for (int i = 0; i < spec.volumes().size(); i++) {
                VolumeSpec v = spec.volumes().get(i);
                String snapshot = snapshotIds.get(i);
                var create = software.amazon.awssdk.services.ec2.model.CreateVolumeRequest.builder()
                        .availabilityZone(zone).volumeType(VolumeType.GP3).encrypted(true)
                        .clientToken(spec.clientToken() + "-" + i)
                        .tagSpecifications(TagSpecification.builder().resourceType(ResourceType.VOLUME).tags(
                                tag(MANAGED, "true"), tag(ROLE, spec.role()), tag(VOLUME_ROLE, v.role()),
                                tag(COLLECTION, v.collection()), tag("Name", "kiln-" + v.role())).build());
                if (snapshot != null) {
                    create.snapshotId(snapshot);
                }
                if (v.sizeGiB() > 0) {
                    create.size(v.sizeGiB());
                }
                String id = ec2.createVolume(create.build()).volumeId();
                created.add(created(v, id, "/dev/sd" + DEVICES.charAt(i), snapshot));
            }
            if (!created.isEmpty()) {
                ec2.waiter().waitUntilVolumeAvailable(r -> r.volumeIds(created.stream().map(InstanceLayout.Volume::volumeId).toList()));
            }
        } catch (SdkException e) {
            deleteNew(created);
            throw AwsErrors.translate(e, "creating volumes for a " + spec.role());
        }

        String userData;
        try {
            userData = spec.userData().apply(created);
        } catch (RuntimeException e) {
            // The user data cannot be written (more than EC2 takes): the new volumes are of no use alone.
            deleteNew(created);
            throw e;
        }

        List<Tag> instanceTags = new ArrayList<>(List.of(tag(MANAGED, "true"), tag(ROLE, spec.role()),
                tag(EXPIRES_AT, expiresAt.toString()), tag(CERT_NAME, spec.certName()),
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
        Instance launched;
        try {
            launched = ec2.runInstances(run.build()).instances().get(0);
        } catch (SdkException e) {
            deleteNew(created);
            throw AwsErrors.translate(e, "launching a " + spec.role());
        }
        if (created.isEmpty()) {
            return managed(launched);
        }
        // EC2 attaches volumes only to a running (or stopped) instance.
        ManagedInstance up = awaitRunning(launched.instanceId(), Duration.ofMinutes(10));
        for (InstanceLayout.Volume v : created) {
            try {
                ec2.attachVolume(a -> a.instanceId(launched.instanceId()).volumeId(v.volumeId()).device(v.device()));
            } catch (SdkException e) {
                throw AwsErrors.translate(e, "attaching " + v.volumeId() + " (" + v.role() + ") to " + launched.instanceId()
                        + "; the instance runs and its agent reports the missing volume; it ends by its lease, or"
                        + " `kiln terminate " + launched.instanceId() + "`");
            }
        }
        return up;
    }

    /**
     * A volume this launch just created with CreateVolume: fresh, and created empty, when no
     * snapshot went into it (then, and only then, the user data vouches that it is blank).
     */
    static InstanceLayout.Volume created(VolumeSpec spec, String volumeId, String device, String snapshotId) {
        boolean empty = snapshotId == null;
        return new InstanceLayout.Volume(spec.role(), volumeId, device, empty, empty);
    }

    /** The availability zone of a subnet, or of the region's first zone when none is given. */
    private String zone(String subnet) {
        if (subnet != null) {
            return ec2.describeSubnets(r -> r.subnetIds(subnet)).subnets().get(0).availabilityZone();
        }
        return ec2.describeAvailabilityZones(r -> r.filters(Filter.builder().name("state").values("available").build()))
                .availabilityZones().get(0).zoneName();
    }

    /** Deletes volumes this launch created and nothing used (the launch failed); best effort. */
    private void deleteNew(List<InstanceLayout.Volume> created) {
        for (InstanceLayout.Volume v : created) {
            try {
                ec2.deleteVolume(d -> d.volumeId(v.volumeId()));
            } catch (SdkException ignored) {
                // it is tagged kiln:managed and shows in the console; nothing was written to it
            }
        }
    }

    /** Waits until EC2 reports the instance running, and returns it with its addresses. */
    public ManagedInstance awaitRunning(String id, Duration timeout) {
        try {
            ec2.waiter().waitUntilInstanceRunning(r -> r.instanceIds(id),
                    w -> w.maxAttempts((int) Math.max(1, timeout.toSeconds() / 5)).backoffStrategy(
                            software.amazon.awssdk.core.retry.backoff.FixedDelayBackoffStrategy.create(Duration.ofSeconds(5))));
            return get(id);
        } catch (SdkException e) {
            throw AwsErrors.translate(e, "waiting for " + id + " to run");
        }
    }

    @Override
    public List<FleetVolume> volumes(String instanceId) {
        try {
            return ec2.describeVolumes(DescribeVolumesRequest.builder()
                    .filters(Filter.builder().name("attachment.instance-id").values(instanceId).build()).build()).volumes()
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
