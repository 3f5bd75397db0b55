package dev.kiln.agent.instance;

import java.io.IOException;
import java.net.URI;
import java.time.Duration;
import java.time.Instant;

/** Reads an ec2-mode agent's identity from IMDSv2 at start, retrying while IMDS lags behind early boot. */
public final class ImdsIdentity {

    private ImdsIdentity() {
    }

    /**
     * @param endpoint kiln.imds.endpoint, or null for the SDK's default
     * @param timeout  kiln.imds.timeout: how long to keep trying
     * @throws IOException when IMDS does not answer within {@code timeout}; the message says what to do
     */
    public static InstanceIdentity read(String endpoint, Duration timeout) throws IOException {
        Instant giveUp = Instant.now().plus(timeout);
        IOException last;
        try (MetadataSource imds = new SdkMetadataSource(endpoint == null ? null : URI.create(endpoint), timeout)) {
            while (true) {
                try {
                    return imds.identity();
                } catch (IOException e) {
                    last = e;
                }
                if (Instant.now().isAfter(giveUp)) {
                    throw new IOException("cannot read instance identity from IMDSv2 at "
                            + (endpoint == null ? "the default endpoint" : endpoint) + " within " + timeout
                            + " (kiln.mode is ec2; use kiln.mode: local off EC2): " + last.getMessage(), last);
                }
                try {
                    Thread.sleep(500);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    throw new IOException("interrupted while waiting for IMDS", e);
                }
            }
        }
    }
}
