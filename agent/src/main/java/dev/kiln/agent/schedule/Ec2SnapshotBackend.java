package dev.kiln.agent.schedule;

import dev.kiln.agent.volume.KilnMount;
import software.amazon.awssdk.auth.credentials.DefaultCredentialsProvider;
import software.amazon.awssdk.core.exception.SdkException;
import software.amazon.awssdk.http.urlconnection.UrlConnectionHttpClient;
import software.amazon.awssdk.regions.Region;
import software.amazon.awssdk.services.ec2.Ec2Client;
import software.amazon.awssdk.services.ec2.Ec2ClientBuilder;
import software.amazon.awssdk.services.ec2.model.CreateSnapshotResponse;
import software.amazon.awssdk.services.ec2.model.DescribeSnapshotsRequest;
import software.amazon.awssdk.services.ec2.model.Filter;
import software.amazon.awssdk.services.ec2.model.ResourceType;
import software.amazon.awssdk.services.ec2.model.Snapshot;
import software.amazon.awssdk.services.ec2.model.Tag;
import software.amazon.awssdk.services.ec2.model.TagSpecification;
import software.amazon.awssdk.services.ec2.model.Volume;

import java.io.IOException;
import java.net.URI;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

/**
 * Scheduled snapshots on EC2: the agent calls CreateSnapshot and DeleteSnapshot itself, with the
 * instance profile's credentials (the SDK's default chain), because no workstation is awake at
 * 03:00. The instance profile's policy (docs/aws.md) allows exactly these calls on Kiln's
 * volumes and snapshots; the agent also refuses a volume that is not attached to this instance
 * or carries no Kiln tag, so a wider policy changes nothing it does.
 */
public final class Ec2SnapshotBackend implements SnapshotBackend, AutoCloseable {

    static final String MANAGED = "kiln:managed";
    static final String ROLE = "kiln:role";
    static final String VOLUME_ROLE = "kiln:volume-role";
    static final String SOURCE_VOLUME = "kiln:source-volume";
    static final String SOURCE_INSTANCE = "kiln:source-instance";
    static final String COLLECTION = "kiln:collection";
    static final String SCHEDULED = "kiln:scheduled";

    private final String instanceId;
    private final String region;
    private final URI endpoint;
    private final Duration callTimeout;
    /** Made at the first call: an agent without schedules never loads the EC2 client (idle memory matters). */
    private Ec2Client client;

    /**
     * @param region     the instance's region (from IMDS)
     * @param endpoint   an EC2 endpoint in place of the region's (tests), or null
     * @param instanceId this instance's id: only volumes attached to it are snapshotted
     * @param callTimeout how long one API call may take (shorter than the freeze lease)
     */
    public Ec2SnapshotBackend(String region, URI endpoint, String instanceId, Duration callTimeout) {
        this.region = region;
        this.endpoint = endpoint;
        this.instanceId = instanceId;
        this.callTimeout = callTimeout;
    }

    private synchronized Ec2Client ec2() {
        if (client == null) {
            Ec2ClientBuilder b = Ec2Client.builder().region(Region.of(region))
                    .credentialsProvider(DefaultCredentialsProvider.builder().build())
                    .httpClientBuilder(UrlConnectionHttpClient.builder())
                    .overrideConfiguration(o -> o.apiCallTimeout(callTimeout));
            if (endpoint != null) {
                b.endpointOverride(endpoint);
            }
            client = b.build();
        }
        return client;
    }

    @Override
    public Target target(String role, KilnMount mount) throws IOException {
        if (mount.volumeId().isEmpty()) {
            throw new IOException(mount.mountPoint() + " is " + mount.device() + ", not an EBS volume; only EBS volumes are"
                    + " snapshotted on EC2");
        }
        return target(role, mount, mount.volumeId());
    }

    /** The target for an EBS volume, checked against EC2: attached here and tagged by Kiln. */
    Target target(String role, KilnMount mount, String volumeId) throws IOException {
        Volume v;
        try {
            v = ec2().describeVolumes(d -> d.volumeIds(volumeId)).volumes().stream().findFirst()
                    .orElseThrow(() -> new IOException("EC2 does not know volume " + volumeId));
        } catch (SdkException e) {
            throw new IOException("describing " + volumeId + " failed: " + e.getMessage(), e);
        }
        if (!"true".equals(tag(v.tags(), MANAGED))) {
            throw new IOException(volumeId + " carries no " + MANAGED + " tag: Kiln snapshots only volumes Kiln created"
                    + " (the instance profile's policy allows no other)");
        }
        if (v.attachments().stream().noneMatch(a -> instanceId.equals(a.instanceId()))) {
            throw new IOException(volumeId + " is not attached to this instance (" + instanceId + ")");
        }
        String volumeRole = tag(v.tags(), VOLUME_ROLE);
        if (!volumeRole.isEmpty() && !volumeRole.equals(role)) {
            throw new IOException(volumeId + " has volume role '" + volumeRole + "', not '" + role + "'");
        }
        return new Target(role, mount.mountPoint(), volumeId, tag(v.tags(), COLLECTION), tag(v.tags(), ROLE), volumeId);
    }

    @Override
    public Taken create(Target t) throws IOException {
        List<Tag> tags = new ArrayList<>(List.of(tag(MANAGED, "true"), tag(VOLUME_ROLE, t.role()), tag(SOURCE_VOLUME, t.volumeId()),
                tag(SOURCE_INSTANCE, instanceId), tag(ROLE, t.instanceRole()), tag(SCHEDULED, "true")));
        if (!t.collection().isEmpty()) {
            tags.add(tag(COLLECTION, t.collection()));
        }
        try {
            CreateSnapshotResponse r = ec2().createSnapshot(c -> c.volumeId(t.volumeId())
                    .description("kiln scheduled " + t.role() + " of " + instanceId)
                    .tagSpecifications(TagSpecification.builder().resourceType(ResourceType.SNAPSHOT).tags(tags).build()));
            return new Taken(r.snapshotId(), r.startTime(), true, t.collection(), r.stateAsString());
        } catch (SdkException e) {
            throw new IOException("CreateSnapshot of " + t.volumeId() + " failed: " + e.getMessage(), e);
        }
    }

    @Override
    public void abandon(Target target, Taken taken) {
        try {
            ec2().deleteSnapshot(d -> d.snapshotId(taken.id()));
        } catch (SdkException e) {
            org.slf4j.LoggerFactory.getLogger(Ec2SnapshotBackend.class).error("could not delete {}, which does not count as a"
                    + " consistent snapshot: {}", taken.id(), e.getMessage());
        }
    }

    @Override
    public List<Taken> list(Target t) throws IOException {
        try {
            List<Taken> out = new ArrayList<>();
            for (Snapshot s : ec2().describeSnapshotsPaginator(DescribeSnapshotsRequest.builder().ownerIds("self")
                    .filters(Filter.builder().name("tag:" + VOLUME_ROLE).values(t.role()).build()).build()).snapshots()) {
                // Only snapshots a schedule took of this same volume: never another instance's, never one taken by hand.
                boolean ours = "true".equals(tag(s.tags(), MANAGED)) && "true".equals(tag(s.tags(), SCHEDULED))
                        && t.volumeId().equals(tag(s.tags(), SOURCE_VOLUME));
                out.add(new Taken(s.snapshotId(), s.startTime(), ours,
                        tag(s.tags(), COLLECTION), s.stateAsString()));
            }
            return out;
        } catch (SdkException e) {
            throw new IOException("DescribeSnapshots failed: " + e.getMessage(), e);
        }
    }

    @Override
    public void delete(Target t, Taken snapshot) throws IOException {
        if (!snapshot.managed()) {
            throw new IOException("not deleting " + snapshot.id() + ": it carries no Kiln mark");
        }
        try {
            ec2().deleteSnapshot(d -> d.snapshotId(snapshot.id()));
        } catch (SdkException e) {
            throw new IOException("DeleteSnapshot of " + snapshot.id() + " failed: " + e.getMessage(), e);
        }
    }

    @Override
    public String describe() {
        return "EC2 (" + region + ")";
    }

    @Override
    public synchronized void close() {
        if (client != null) {
            client.close();
        }
    }

    private static Tag tag(String key, String value) {
        return Tag.builder().key(key).value(value).build();
    }

    private static String tag(List<Tag> tags, String key) {
        return tags.stream().filter(x -> key.equals(x.key())).map(Tag::value).findFirst().orElse("");
    }
}
