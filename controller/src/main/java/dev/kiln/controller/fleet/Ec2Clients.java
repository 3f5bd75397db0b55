package dev.kiln.controller.fleet;

import dev.kiln.controller.config.ControllerSettings;
import software.amazon.awssdk.http.urlconnection.UrlConnectionHttpClient;
import software.amazon.awssdk.regions.Region;
import software.amazon.awssdk.services.ec2.Ec2Client;
import software.amazon.awssdk.services.ec2.Ec2ClientBuilder;

import java.net.URI;

/**
 * Builds the EC2 client: credentials from the SDK's default chain (environment, profile, SSO,
 * instance role), region from `region` / KILN_REGION or the SDK's chain (AWS_REGION, profile),
 * and an optional endpoint override (`ec2-endpoint`, for tests against moto or a VPC endpoint).
 */
public final class Ec2Clients {

    private Ec2Clients() {
    }

    public static Ec2Client create(ControllerSettings settings) {
        Ec2ClientBuilder b = Ec2Client.builder().httpClient(UrlConnectionHttpClient.create());
        settings.get("region", null).ifPresent(r -> b.region(Region.of(r)));
        settings.get("ec2-endpoint", null).ifPresent(e -> b.endpointOverride(URI.create(e)));
        try {
            return b.build();
        } catch (software.amazon.awssdk.core.exception.SdkException e) {
            throw AwsErrors.translate(e, "setting up the EC2 client");
        }
    }
}
