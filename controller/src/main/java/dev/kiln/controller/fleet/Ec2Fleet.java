package dev.kiln.controller.fleet;

import dev.kiln.controller.ExitCodes;
import dev.kiln.controller.KilnException;
import software.amazon.awssdk.core.exception.SdkException;
import software.amazon.awssdk.services.ec2.Ec2Client;
import software.amazon.awssdk.services.ec2.model.BlockDeviceMapping;
import software.amazon.awssdk.services.ec2.model.CreateSnapshotRequest;
import software.amazon.awssdk.services.ec2.model.DescribeImagesRequest;
import software.amazon.awssdk.services.ec2.model.DescribeInstancesRequest;
import software.amazon.awssdk.services.ec2.model.DescribeSnapshotsRequest;
import software.amazon.awssdk.services.ec2.model.DescribeVolumesRequest;
import software.amazon.awssdk.services.ec2.model.EbsBlockDevice;
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
import software.amazon.awssdk.services.ec2.model.Volume;
import software.amazon.awssdk.services.ec2.model.VolumeType;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Base64;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;

/**
 * The EC2 side of the fleet: launching instances as Kiln wants them (IMDSv2 only, terminate on
 * shutdown, tagged, idempotent), finding them by tag, snapshots with retention, and the
 * controller-side backstop (reap). Talks to EC2 only; agents are reached over gRPC elsewhere.
 */
public final class Ec2Fleet {

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

    /** Device names handed to volumes in order: /dev/sdf, /dev/sdg, ... (hints only for the agent). */
    static final String DEVICES = "fghijklmnop";

    private final Ec2Client ec2;

    public Ec2Fleet(Ec2Client ec2) {
        this.ec2 = ec2;
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
     * @param userData        the agent's settings
     * @param certName        the name in the agent's certificate
     * @param grpcPort        the agent's port
     * @param clientToken     idempotency token: a retried launch with the same token launches nothing new
     */
    public record LaunchSpec(String role, String ami, String instanceType, String subnet, List<String> securityGroups,
                             String keyName, String instanceProfile, Duration ttl, Map<String, String> labels,
                             List<VolumeSpec> volumes, String userData, String certName, int grpcPort,
                             String clientToken) {
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

    /** The newest Kiln snapshot of a volume role (completed or not), if any. */
    public Optional<Snapshot> newestSnapshot(String volumeRole) {
        return snapshots(volumeRole).stream().findFirst();
    }

    /** Kiln's snapshots (of one volume role, or all when null), newest first. */
    public List<Snapshot> snapshots(String volumeRole) {
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

    /** Managed instances that are pending or running. */
    public List<ManagedInstance> active() {
        return list(List.of("pending", "running"));
    }

    /** Managed instances in the given states (all but terminated when empty). */
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

    /** One managed instance by id. */
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
        List<ManagedInstance> running = active();
        if (maxInstances > 0 && running.size() >= maxInstances) {
            StringBuilder b = new StringBuilder("the fleet cap is " + maxInstances + " and " + running.size()
                    + " managed instances are pending or running:");
            running.forEach(m -> b.append("\n  ").append(m.id()).append(' ').append(m.role()).append(' ').append(m.state())
                    .append(m.labels().isEmpty() ? "" : " " + m.labels()));
            b.append("\nend one (kiln terminate ID) or raise the cap (--max)");
            throw new KilnException(ExitCodes.REFUSED, b.toString());
        }
        String ami = resolveAmi(spec.ami());
        Instant expiresAt = Instant.now().plus(spec.ttl()).truncatedTo(java.time.temporal.ChronoUnit.SECONDS);

        List<BlockDeviceMapping> devices = new ArrayList<>();
        for (int i = 0; i < spec.volumes().size(); i++) {
            VolumeSpec v = spec.volumes().get(i);
            if (i >= DEVICES.length()) {
                throw new KilnException(ExitCodes.USAGE, "at most " + DEVICES.length() + " volumes per instance");
            }
            EbsBlockDevice.Builder ebs = EbsBlockDevice.builder().volumeType(VolumeType.GP3).deleteOnTermination(false)
                    .encrypted(true);
            String snapshot = v.snapshotId();
            if (v.latest()) {
                snapshot = newestSnapshot(v.role()).map(Snapshot::snapshotId).orElseThrow(() -> new KilnException(
                        ExitCodes.NOT_FOUND, "no Kiln snapshot of volume role '" + v.role() + "' yet; launch with "
                        + v.role() + ":SIZE_GIB for a new volume first"));
            }
            if (snapshot != null) {
                ebs.snapshotId(snapshot);
            }
            if (v.sizeGiB() > 0) {
                ebs.volumeSize(v.sizeGiB());
            }
            devices.add(BlockDeviceMapping.builder().deviceName("/dev/sd" + DEVICES.charAt(i)).ebs(ebs.build()).build());
        }

        List<Tag> instanceTags = new ArrayList<>(List.of(tag(MANAGED, "true"), tag(ROLE, spec.role()),
                tag(EXPIRES_AT, expiresAt.toString()), tag(CERT_NAME, spec.certName()),
                tag(GRPC_PORT, Integer.toString(spec.grpcPort())), tag("Name", "kiln-" + spec.role())));
        new TreeMap<>(spec.labels()).forEach((k, v) -> instanceTags.add(tag(LABEL + k, v)));
        List<TagSpecification> tagSpecs = new ArrayList<>(List.of(
                TagSpecification.builder().resourceType(ResourceType.INSTANCE).tags(instanceTags).build()));
        if (!devices.isEmpty()) {
            tagSpecs.add(TagSpecification.builder().resourceType(ResourceType.VOLUME)
                    .tags(tag(MANAGED, "true"), tag(ROLE, spec.role())).build());
        }

        RunInstancesRequest.Builder run = RunInstancesRequest.builder()
                .imageId(ami).instanceType(spec.instanceType()).minCount(1).maxCount(1)
                .clientToken(spec.clientToken())
                .metadataOptions(InstanceMetadataOptionsRequest.builder().httpTokens(HttpTokensState.REQUIRED)
                        .httpPutResponseHopLimit(1).build())
                .instanceInitiatedShutdownBehavior(ShutdownBehavior.TERMINATE)
                .userData(Base64.getEncoder().encodeToString(spec.userData().getBytes(StandardCharsets.UTF_8)))
                .tagSpecifications(tagSpecs)
                .blockDeviceMappings(devices);
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
        try {
            Instance launched = ec2.runInstances(run.build()).instances().get(0);
            // Volume roles go on each volume once EC2 has created them.
            tagVolumeRoles(launched.instanceId(), spec.volumes());
            return managed(launched);
        } catch (SdkException e) {
            throw AwsErrors.translate(e, "launching a " + spec.role());
        }
    }

    private void tagVolumeRoles(String instanceId, List<VolumeSpec> volumes) {
        if (volumes.isEmpty()) {
            return;
        }
        List<Volume> attached = ec2.describeVolumes(DescribeVolumesRequest.builder()
                .filters(Filter.builder().name("attachment.instance-id").values(instanceId).build()).build()).volumes();
        for (int i = 0; i < volumes.size(); i++) {
            String device = "/dev/sd" + DEVICES.charAt(i);
            String role = volumes.get(i).role();
            attached.stream().filter(v -> v.attachments().stream().anyMatch(a -> device.equals(a.device())))
                    .forEach(v -> ec2.createTags(t -> t.resources(v.volumeId()).tags(tag(VOLUME_ROLE, role))));
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

    /** The instance's volumes with their Kiln volume roles. */
    public List<Volume> volumes(String instanceId) {
        try {
            return ec2.describeVolumes(DescribeVolumesRequest.builder()
                    .filters(Filter.builder().name("attachment.instance-id").values(instanceId).build()).build()).volumes();
        } catch (SdkException e) {
            throw AwsErrors.translate(e, "listing the volumes of " + instanceId);
        }
    }

    /** Starts a snapshot of a volume, tagged for retention. */
    public Snapshot createSnapshot(Volume volume, ManagedInstance instance, String volumeRole, String buildId) {
        List<Tag> tags = new ArrayList<>(List.of(tag(MANAGED, "true"), tag(VOLUME_ROLE, volumeRole),
                tag(SOURCE_VOLUME, volume.volumeId()), tag(SOURCE_INSTANCE, instance.id()), tag(ROLE, instance.role())));
        if (buildId != null && !buildId.isEmpty()) {
            tags.add(tag(BUILD_ID, buildId));
        }
        new TreeMap<>(instance.labels()).forEach((k, v) -> tags.add(tag(LABEL + k, v)));
        try {
            var r = ec2.createSnapshot(CreateSnapshotRequest.builder().volumeId(volume.volumeId())
                    .description("kiln " + volumeRole + " of " + instance.id())
                    .tagSpecifications(TagSpecification.builder().resourceType(ResourceType.SNAPSHOT).tags(tags).build())
                    .build());
            return Snapshot.builder().snapshotId(r.snapshotId()).volumeId(r.volumeId()).startTime(r.startTime())
                    .state(r.state()).tags(r.tags()).volumeSize(r.volumeSize()).build();
        } catch (SdkException e) {
            throw AwsErrors.translate(e, "creating a snapshot of " + volume.volumeId());
        }
    }

    /**
     * Deletes the older Kiln snapshots of a volume role beyond the newest {@code keep}. Never the
     * newest one, never a snapshot without the kiln:managed tag.
     *
     * @return the deleted snapshot ids
     */
    public List<String> prune(String volumeRole, int keep) {
        if (keep < 1) {
            throw new KilnException(ExitCodes.USAGE, "--keep must be at least 1 (the newest snapshot is never deleted)");
        }
        List<Snapshot> all = snapshots(volumeRole);
        List<String> deleted = new ArrayList<>();
        for (Snapshot s : all.subList(Math.min(keep, all.size()), all.size())) {
            boolean managed = s.tags().stream().anyMatch(t -> t.key().equals(MANAGED) && t.value().equals("true"));
            if (!managed || s.equals(all.get(0))) {
                continue;
            }
            try {
                ec2.deleteSnapshot(d -> d.snapshotId(s.snapshotId()));
                deleted.add(s.snapshotId());
            } catch (SdkException e) {
                throw AwsErrors.translate(e, "deleting snapshot " + s.snapshotId());
            }
        }
        return deleted;
    }

    /** Terminates instances (only managed ones). */
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

    /** Managed instances whose lease passed more than {@code grace} ago, still pending or running. */
    public List<ManagedInstance> expired(Instant now, Duration grace) {
        return active().stream().filter(m -> m.expiresAt() != null && m.expiresAt().plus(grace).isBefore(now)).toList();
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
