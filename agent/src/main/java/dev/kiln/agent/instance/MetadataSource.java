package dev.kiln.agent.instance;

import java.io.IOException;
import java.util.Optional;

/**
 * Reads the EC2 instance metadata service. One real implementation ({@link SdkMetadataSource},
 * IMDSv2 only); tests run it against AWS's amazon-ec2-metadata-mock.
 */
public interface MetadataSource extends AutoCloseable {

    /** A metadata path such as {@code instance-id} (relative to {@code /latest/meta-data/}). */
    String metadata(String path) throws IOException;

    /** A metadata path that may not exist (404): its value, or empty. */
    Optional<String> optional(String path) throws IOException;

    /** The instance's user data, or empty when the instance has none. */
    Optional<String> userData() throws IOException;

    /** Reads this instance's identity. */
    default InstanceIdentity identity() throws IOException {
        String instanceId = metadata("instance-id").trim();
        String region = metadata("placement/region").trim();
        return new InstanceIdentity(dev.kiln.agent.config.AgentMode.EC2, instanceId, region, userData());
    }

    @Override
    void close();
}
