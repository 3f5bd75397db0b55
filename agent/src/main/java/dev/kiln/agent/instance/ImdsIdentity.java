package dev.kiln.agent.instance;

import software.amazon.awssdk.core.retry.backoff.BackoffStrategy;
import software.amazon.awssdk.core.retry.backoff.FixedDelayBackoffStrategy;
import software.amazon.awssdk.imds.Ec2MetadataRetryPolicy;

import java.io.IOException;
import java.net.URI;
import java.time.Duration;

/** Reads an ec2-mode agent's identity from IMDSv2 at start, retrying while IMDS lags behind early boot. */
public final class ImdsIdentity {

    /** Pause between attempts; IMDS answers within a second or two of boot, so polling stays cheap. */
    static final Duration RETRY_DELAY = Duration.ofMillis(500);

    private ImdsIdentity() {
    }

    /**
     * @param endpoint kiln.imds.endpoint, or null for the SDK's default
     * @param timeout  kiln.imds.timeout: how long to keep trying
     * @throws IOException when IMDS does not answer within {@code timeout}; the message says what to do
     */
    public static InstanceIdentity read(String endpoint, Duration timeout) throws IOException {
        try (MetadataSource imds = new SdkMetadataSource(endpoint == null ? null : URI.create(endpoint), retries(timeout))) {
            return imds.identity();
        } catch (IOException e) {
            throw new IOException("cannot read instance identity from IMDSv2 at "
                    + (endpoint == null ? "the default endpoint" : endpoint) + " within " + timeout
                    + " (kiln.mode is ec2; use kiln.mode: local off EC2): " + e.getMessage(), e);
        }
    }

    /** The SDK's retry policy that keeps trying for about {@code timeout} (each failed connection adds its own wait). */
    static Ec2MetadataRetryPolicy retries(Duration timeout) {
        BackoffStrategy fixed = FixedDelayBackoffStrategy.create(RETRY_DELAY);
        int retries = (int) Math.max(1, Math.min(Integer.MAX_VALUE, timeout.toMillis() / RETRY_DELAY.toMillis()));
        return Ec2MetadataRetryPolicy.builder().numRetries(retries).backoffStrategy(fixed).build();
    }
}
