package dev.kiln.testkit;

import java.net.URI;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import software.amazon.awssdk.auth.credentials.AwsBasicCredentials;
import software.amazon.awssdk.auth.credentials.AwsCredentialsProvider;
import software.amazon.awssdk.auth.credentials.StaticCredentialsProvider;
import software.amazon.awssdk.http.urlconnection.UrlConnectionHttpClient;
import software.amazon.awssdk.regions.Region;
import software.amazon.awssdk.services.ec2.Ec2Client;

/**
 * A real {@code moto_server} on 127.0.0.1, standing in for the EC2 API.
 *
 * <pre>{@code
 * try (MotoServer moto = MotoServer.start()) {
 *     Ec2Client ec2 = moto.ec2Client();
 *     ec2.createVpc(r -> r.cidrBlock("10.0.0.0/16"));
 * }
 * }</pre>
 *
 * <p>Each server starts empty, so tests that start their own do not see each other's resources.
 * moto makes every state change instant.
 */
public final class MotoServer implements AutoCloseable {

    /** How to get {@code moto_server}; {@code .ci/run} installs this exact version. */
    public static final String INSTALL_HINT = "pip install 'moto[server]==5.2.5'";
    /** The region the clients are configured for. */
    public static final Region REGION = Region.US_EAST_1;

    private static final Duration STARTUP_TIMEOUT = Duration.ofSeconds(30);

    private final ManagedProcess process;
    private final URI endpoint;
    private Ec2Client ec2Client;

    private MotoServer(ManagedProcess process, URI endpoint) {
        this.process = process;
        this.endpoint = endpoint;
    }

    /**
     * Starts {@code moto_server} on a free loopback port and waits until it answers HTTP.
     * Skips the test (fails it under {@code CI=true}) if {@code moto_server} is not installed.
     *
     * @return the running server; close it to stop it
     */
    public static MotoServer start() {
        Path motoServer = Prerequisites.requireCommand("moto_server", INSTALL_HINT);
        int port = FreePorts.loopbackPort();
        ManagedProcess process = ManagedProcess.start("moto_server",
                List.of(motoServer.toString(), "-H", "127.0.0.1", "-p", Integer.toString(port)),
                env -> {
                    // No stray AWS settings of the developer's may reach the server.
                    env.keySet().removeIf(name -> name.startsWith("AWS_"));
                },
                Path.of(System.getProperty("java.io.tmpdir")));
        URI endpoint = URI.create("http://127.0.0.1:" + port);
        process.awaitHttp(endpoint.resolve("/moto-api/"), STARTUP_TIMEOUT);
        return new MotoServer(process, endpoint);
    }

    /** The server's base URL, e.g. {@code http://127.0.0.1:40123}. */
    public URI endpoint() {
        return endpoint;
    }

    /** Dummy credentials moto accepts ("testing"/"testing"). */
    public AwsCredentialsProvider credentials() {
        return StaticCredentialsProvider.create(AwsBasicCredentials.create("testing", "testing"));
    }

    /**
     * An EC2 client pointed at this server ({@link #REGION}, dummy credentials, the URL-connection
     * HTTP client). The same client is returned each time and is closed with the server.
     */
    public synchronized Ec2Client ec2Client() {
        if (ec2Client == null) {
            ec2Client = Ec2Client.builder()
                    .endpointOverride(endpoint)
                    .region(REGION)
                    .credentialsProvider(credentials())
                    .httpClientBuilder(UrlConnectionHttpClient.builder())
                    .build();
        }
        return ec2Client;
    }

    /** The server process's id. */
    public long pid() {
        return process.pid();
    }

    /** Closes the client and stops the server process and its descendants. */
    @Override
    public synchronized void close() {
        if (ec2Client != null) {
            ec2Client.close();
            ec2Client = null;
        }
        process.close();
    }
}
