package dev.kiln.agent.instance;

import software.amazon.awssdk.core.exception.SdkClientException;
import software.amazon.awssdk.core.exception.SdkServiceException;
import software.amazon.awssdk.http.urlconnection.UrlConnectionHttpClient;
import software.amazon.awssdk.imds.Ec2MetadataClient;
import software.amazon.awssdk.imds.Ec2MetadataRetryPolicy;
import software.amazon.awssdk.imds.EndpointMode;

import java.io.IOException;
import java.net.URI;
import java.time.Duration;
import java.util.Optional;

/**
 * IMDS through the AWS SDK's {@link Ec2MetadataClient}, which always fetches a session token
 * first (IMDSv2) and never falls back to IMDSv1.
 */
public final class SdkMetadataSource implements MetadataSource {

    private final Ec2MetadataClient client;

    /**
     * @param endpoint override (tests, or a proxy); null for the SDK's default endpoint
     * @param retry    how the SDK retries a request that fails to connect or gets a 5xx answer
     */
    public SdkMetadataSource(URI endpoint, Ec2MetadataRetryPolicy retry) {
        Ec2MetadataClient.Builder builder = Ec2MetadataClient.builder()
                .retryPolicy(retry)
                .httpClient(UrlConnectionHttpClient.builder()
                        .connectionTimeout(Duration.ofSeconds(2))
                        .socketTimeout(Duration.ofSeconds(5))
                        .build())
                .tokenTtl(Duration.ofHours(6));
        if (endpoint != null) {
            builder.endpoint(endpoint);
        } else {
            builder.endpointMode(EndpointMode.IPV4);
        }
        this.client = builder.build();
    }

    @Override
    public String metadata(String path) throws IOException {
        try {
            return client.get("/latest/meta-data/" + path).asString();
        } catch (SdkClientException | SdkServiceException e) {
            throw new IOException("IMDS request for meta-data/" + path + " failed: " + e.getMessage(), e);
        }
    }

    @Override
    public Optional<String> optional(String path) throws IOException {
        return get("/latest/meta-data/" + path);
    }

    @Override
    public Optional<String> userData() throws IOException {
        // An instance launched without user data answers 404.
        return get("/latest/user-data").filter(s -> !s.isEmpty());
    }

    private Optional<String> get(String path) throws IOException {
        try {
            return Optional.ofNullable(client.get(path).asString());
        } catch (SdkServiceException e) {
            if (e.statusCode() == 404) {
                return Optional.empty();
            }
            throw new IOException("IMDS request for " + path + " failed: " + e.getMessage(), e);
        } catch (SdkClientException e) {
            // The SDK reports a 4xx answer as a client exception whose message carries the code.
            if (String.valueOf(e.getMessage()).contains("returned Http code 404")) {
                return Optional.empty();
            }
            throw new IOException("IMDS request for " + path + " failed: " + e.getMessage(), e);
        }
    }

    @Override
    public void close() {
        client.close();
    }
}
