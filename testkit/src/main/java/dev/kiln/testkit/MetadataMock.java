package dev.kiln.testkit;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import software.amazon.awssdk.http.urlconnection.UrlConnectionHttpClient;
import software.amazon.awssdk.imds.Ec2MetadataClient;

/**
 * AWS's real EC2 instance metadata mock ({@code ec2-metadata-mock}, amazon-ec2-metadata-mock
 * v1.12.0) on 127.0.0.1, configured as one instance.
 *
 * <pre>{@code
 * try (MetadataMock imds = MetadataMock.builder()
 *         .instanceId("i-0123456789abcdef0")
 *         .region("eu-west-1")
 *         .userData("#kiln\nrole: builder\n")
 *         .start()) {
 *     String id = imds.client().get("/latest/meta-data/instance-id").asString();
 * }
 * }</pre>
 *
 * <p>How the mock behaves, as configured here:
 * <ul>
 *   <li>IMDSv2 only by default, as Kiln's instances are launched: {@code PUT /latest/api/token}
 *       (header {@code X-aws-ec2-metadata-token-ttl-seconds}, 1..21600) gives a token, and a
 *       metadata request without a valid {@code X-aws-ec2-metadata-token} gets 401.
 *       {@link Builder#allowImdsV1()} lets plain GETs through as well.</li>
 *   <li>Paths the mock does not know answer 404 even without a token.</li>
 *   <li>Without {@link Builder#userData} {@code /latest/user-data} answers 404, as on an
 *       instance launched without user data.</li>
 *   <li>With no event configured, {@code spot/instance-action},
 *       {@code events/recommendations/rebalance} and {@code events/maintenance/scheduled} answer
 *       404 (real EC2 answers the last with {@code []}).</li>
 *   <li>Notices appear at a trigger time and stay: a spot notice says the instance is stopped or
 *       terminated two minutes after the request.</li>
 * </ul>
 *
 * <p>To add a feature of the mock (asg lifecycle, IAM credentials, tags), extend {@link Builder}:
 * every option ends up as a key in the JSON config file built by {@link Builder#config()}, whose
 * keys are those of the mock's {@code pkg/config} ({@code metadata.values.*},
 * {@code dynamic.values.*}, {@code userdata.values.userdata}, {@code spot.*}, {@code events.*},
 * {@code mock-trigger-time}, {@code rebalance-trigger-time}, {@code imdsv2}); {@link
 * Builder#metadataValue} already sets any {@code metadata.values} key.
 */
public final class MetadataMock implements AutoCloseable {

    /** Environment variable naming the mock's binary; without it the binary is looked up on PATH. */
    public static final String BINARY_VARIABLE = "KILN_EC2_METADATA_MOCK";
    /** The binary's name on PATH. */
    public static final String BINARY_NAME = "ec2-metadata-mock";
    /** How to get the binary. */
    public static final String INSTALL_HINT =
            "bash .ci/run builds it from the Go module proxy (github.com/aws/amazon-ec2-metadata-mock v1.12.0)";

    private static final Duration STARTUP_TIMEOUT = Duration.ofSeconds(30);
    /** A trigger time that never comes: how a notice is kept off. */
    private static final Instant NEVER = Instant.parse("2999-01-01T00:00:00Z");

    private final ManagedProcess process;
    private final URI endpoint;
    private final Path configFile;
    private Ec2MetadataClient client;

    private MetadataMock(ManagedProcess process, URI endpoint, Path configFile) {
        this.process = process;
        this.endpoint = endpoint;
        this.configFile = configFile;
    }

    /** A builder for a mock instance with the mock's defaults (i-1234567890abcdef0, us-east-1a). */
    public static Builder builder() {
        return new Builder();
    }

    /**
     * The mock's base URL, e.g. {@code http://127.0.0.1:40123} (or {@code http://169.254.169.254:80}
     * inside a network namespace); point IMDS clients here.
     */
    public URI endpoint() {
        return endpoint;
    }

    /**
     * An SDK IMDS client pointed at the mock (IMDSv2 tokens, URL-connection HTTP client). The same
     * client is returned each time and closed with the mock.
     */
    public synchronized Ec2MetadataClient client() {
        if (client == null) {
            client = Ec2MetadataClient.builder()
                    .endpoint(endpoint)
                    .httpClient(UrlConnectionHttpClient.builder())
                    .build();
        }
        return client;
    }

    /** The mock process's id. */
    public long pid() {
        return process.pid();
    }

    /** Closes the client, stops the mock and its descendants, and deletes the config file. */
    @Override
    public synchronized void close() {
        if (client != null) {
            client.close();
            client = null;
        }
        process.close();
        Builder.deleteQuietly(configFile);
    }

    /** The instance actions a spot interruption notice can announce. */
    public enum SpotAction {
        TERMINATE, STOP, HIBERNATE;

        String configValue() {
            return name().toLowerCase(java.util.Locale.ROOT);
        }
    }

    /** Configures the mock instance; {@link #start()} writes the config and starts the mock. */
    public static final class Builder {
        private String instanceId;
        private String region;
        private String availabilityZone;
        private byte[] userData;
        private boolean imdsV1Allowed;
        private final Map<String, String> metadataValues = new LinkedHashMap<>();
        private Duration spotInterruptionAfter;
        private SpotAction spotAction = SpotAction.TERMINATE;
        private Duration rebalanceAfter;
        private Duration scheduledEventAfter;
        private String scheduledEventCode;
        private NetworkNamespace namespace;
        private String listenHost;
        private int listenPort;
        private Instant scheduledEventNotBefore;

        private Builder() {
        }

        /** The instance id, in {@code meta-data/instance-id} and the identity document. */
        public Builder instanceId(String instanceId) {
            this.instanceId = Objects.requireNonNull(instanceId);
            return this;
        }

        /**
         * The region, in {@code meta-data/placement/region} and the identity document; unless set,
         * the availability zone becomes the region's "a" zone.
         */
        public Builder region(String region) {
            this.region = Objects.requireNonNull(region);
            return this;
        }

        /** The availability zone, in {@code meta-data/placement/availability-zone} and the identity document. */
        public Builder availabilityZone(String availabilityZone) {
            this.availabilityZone = Objects.requireNonNull(availabilityZone);
            return this;
        }

        /** The user data, served as UTF-8 at {@code /latest/user-data}. */
        public Builder userData(String userData) {
            return userData(userData.getBytes(StandardCharsets.UTF_8));
        }

        /** The user data, served byte for byte at {@code /latest/user-data}. */
        public Builder userData(byte[] userData) {
            this.userData = userData.clone();
            return this;
        }

        /** Also answer plain IMDSv1 GETs without a token (default: IMDSv2 only, 401 without a token). */
        public Builder allowImdsV1() {
            this.imdsV1Allowed = true;
            return this;
        }

        /**
         * Sets any key of the mock's {@code metadata.values}, e.g. "instance-type" or "local-ipv4"
         * (see the mock's {@code pkg/config/defaults/aemm-metadata-default-values.json}).
         */
        public Builder metadataValue(String key, String value) {
            metadataValues.put(Objects.requireNonNull(key), Objects.requireNonNull(value));
            return this;
        }

        /**
         * A spot interruption notice ({@code meta-data/spot/instance-action} and
         * {@code spot/termination-time}) that appears {@code after} the mock starts (to the
         * second, rounded up; {@link Duration#ZERO} means from the start) and stays; the notice's
         * time is two minutes after each request.
         */
        public Builder spotInterruption(SpotAction action, Duration after) {
            this.spotAction = Objects.requireNonNull(action);
            this.spotInterruptionAfter = requireNotNegative(after);
            return this;
        }

        /** A rebalance recommendation ({@code meta-data/events/recommendations/rebalance}) from {@code after} on. */
        public Builder rebalanceRecommendation(Duration after) {
            this.rebalanceAfter = requireNotNegative(after);
            return this;
        }

        /**
         * An active scheduled event ({@code meta-data/events/maintenance/scheduled}) from
         * {@code after} on. The mock uses one trigger time for spot notices and scheduled events,
         * so with both configured they must share {@code after}.
         *
         * @param code instance-reboot, system-reboot, system-maintenance, instance-retirement or instance-stop
         */
        public Builder scheduledEvent(String code, Duration after) {
            this.scheduledEventCode = Objects.requireNonNull(code);
            this.scheduledEventAfter = requireNotNegative(after);
            return this;
        }

        /**
         * Runs the mock inside {@code namespace}, listening on {@code host:port} there, e.g.
         * 169.254.169.254:80 (the address loopback must have: {@link
         * NetworkNamespace#addLoopbackAddress}) or {@code [fd00:ec2::254]}:80. Readiness is then a
         * TCP connection made inside the namespace; {@link #endpoint()} is the address as seen
         * from inside, and {@link #client()} (from this JVM, outside) cannot reach it.
         */
        public Builder inNetworkNamespace(NetworkNamespace namespace, String host, int port) {
            this.namespace = Objects.requireNonNull(namespace);
            this.listenHost = Objects.requireNonNull(host);
            this.listenPort = port;
            return this;
        }

        /** Listens on this loopback port, not a free one (to start the mock where a client already looks). */
        public Builder loopbackPort(int port) {
            this.listenPort = port;
            return this;
        }

        /**
         * An active scheduled event, as {@link #scheduledEvent(String, Duration)}, whose NotBefore
         * (when EC2 may start it; the mock's default is its own start time) is {@code notBefore}.
         */
        public Builder scheduledEvent(String code, Duration after, Instant notBefore) {
            scheduledEvent(code, after);
            this.scheduledEventNotBefore = Objects.requireNonNull(notBefore);
            return this;
        }

        /**
         * Writes the config, starts the mock on a free loopback port (or where {@link
         * #inNetworkNamespace} says) and waits until it answers.
         * Skips the test (fails it under {@code CI=true}) if the binary is missing.
         */
        public MetadataMock start() {
            Path binary = findBinary();
            List<String> command = new ArrayList<>();
            command.add(binary.toString());
            subcommand().ifPresent(command::add);
            Instant startedAt = Instant.now();
            Path configFile = writeConfig(config(startedAt));
            String host = namespace == null ? "127.0.0.1" : listenHost;
            int port = namespace == null && listenPort == 0 ? FreePorts.loopbackPort() : listenPort;
            // The mock listens on HOST:PORT as written, so an IPv6 host keeps its brackets.
            boolean ipv6 = host.contains(":") && !host.startsWith("[");
            String hostInUrl = ipv6 ? "[" + host + "]" : host;
            command.addAll(List.of("-c", configFile.toString(), "-n", hostInUrl, "-p", Integer.toString(port)));
            ManagedProcess process = ManagedProcess.start(BINARY_NAME, namespace == null ? command : namespace.exec(command),
                    env -> {
                        // AEMM_* variables override the config file; none of the developer's may leak in.
                        env.keySet().removeIf(name -> name.startsWith("AEMM_"));
                    },
                    configFile.getParent());
            URI endpoint = URI.create("http://" + hostInUrl + ":" + port);
            try {
                if (namespace == null) {
                    process.awaitHttp(endpoint.resolve("/latest/api/token"), STARTUP_TIMEOUT);
                } else {
                    process.awaitReady("listening on " + hostInUrl + ":" + port + " in network namespace " + namespace.name(),
                            () -> namespace.connects(host, port), STARTUP_TIMEOUT);
                }
            } catch (RuntimeException e) {
                deleteQuietly(configFile);
                throw e;
            }
            return new MetadataMock(process, endpoint, configFile);
        }

        /**
         * Which of the mock's commands serves the configured notices. Each command serves only its
         * own notices ({@code spot}: interruption and rebalance; {@code events}: scheduled
         * events); with none, the root command serves all of them on one shared trigger time.
         */
        Optional<String> subcommand() {
            boolean spot = spotInterruptionAfter != null || rebalanceAfter != null;
            boolean events = scheduledEventAfter != null;
            if (spot && events) {
                if (!Objects.equals(spotInterruptionAfter, scheduledEventAfter)) {
                    throw new IllegalStateException("the metadata mock triggers spot interruptions and"
                            + " scheduled events at one time: configure both with the same delay");
                }
                return Optional.empty();
            }
            return Optional.of(events ? "events" : "spot");
        }

        /** The mock's JSON config as nested maps, with trigger times relative to {@code startedAt}. */
        Map<String, Object> config(Instant startedAt) {
            Map<String, Object> config = new LinkedHashMap<>();
            config.put("imdsv2", !imdsV1Allowed);
            // Serve notices to any number of callers (the mock's default stops at 2 client IPs).
            config.put("mock-ip-count", -1);
            Duration mockTrigger = spotInterruptionAfter != null ? spotInterruptionAfter : scheduledEventAfter;
            config.put("mock-trigger-time", triggerTime(startedAt, mockTrigger));
            config.put("rebalance-trigger-time", triggerTime(startedAt, rebalanceAfter));
            config.put("asg-termination-trigger-time", triggerTime(startedAt, null));

            String effectiveZone = availabilityZone != null ? availabilityZone
                    : region != null ? region + "a" : null;
            Map<String, Object> values = new LinkedHashMap<>();
            Map<String, Object> identity = new LinkedHashMap<>();
            if (instanceId != null) {
                values.put("instance-id", instanceId);
                identity.put("instanceId", instanceId);
            }
            if (region != null) {
                values.put("placement-region", region);
                identity.put("region", region);
            }
            if (effectiveZone != null) {
                values.put("placement-availability-zone", effectiveZone);
                identity.put("availabilityZone", effectiveZone);
            }
            values.putAll(metadataValues);
            if (metadataValues.containsKey("instance-type")) {
                identity.put("instanceType", metadataValues.get("instance-type"));
            }
            config.put("metadata", Map.of("values", values));
            config.put("dynamic", Map.of("values", Map.of("instance-identity-document", identity)));

            if (userData != null) {
                config.put("userdata", Map.of("values",
                        Map.of("userdata", Base64.getEncoder().encodeToString(userData))));
            } else {
                // Move the mock's sample user data off /latest/user-data, which then answers 404.
                config.put("userdata", Map.of(
                        "paths", Map.of("userdata", "/latest/user-data-unset-by-kiln-testkit"),
                        "values", Map.of("userdata", "")));
            }
            config.put("spot", Map.of("action", spotAction.configValue()));
            if (scheduledEventCode != null) {
                Map<String, Object> events = new LinkedHashMap<>(Map.of("code", scheduledEventCode, "state", "active"));
                if (scheduledEventNotBefore != null) {
                    // The mock reads RFC 3339 and serves EC2's "21 Jan 2019 09:00:43 GMT" form; the
                    // event's window and deadline follow NotBefore as EC2's do.
                    Instant at = scheduledEventNotBefore.truncatedTo(ChronoUnit.SECONDS);
                    events.put("not-before", at.toString());
                    events.put("not-after", at.plus(Duration.ofHours(2)).toString());
                    events.put("not-before-deadline", at.plus(Duration.ofDays(2)).toString());
                }
                config.put("events", events);
            }
            return config;
        }

        private static String triggerTime(Instant startedAt, Duration after) {
            if (after == null) {
                return NEVER.toString();
            }
            if (after.isZero()) {
                return startedAt.minusSeconds(1).truncatedTo(ChronoUnit.SECONDS).toString();
            }
            // The mock compares whole seconds; round up so a notice never shows early.
            Instant at = startedAt.plus(after);
            Instant whole = at.truncatedTo(ChronoUnit.SECONDS);
            return (whole.equals(at) ? whole : whole.plusSeconds(1)).toString();
        }

        private static Path findBinary() {
            String configured = System.getenv(BINARY_VARIABLE);
            String command = configured != null && !configured.isBlank() ? configured : BINARY_NAME;
            return Prerequisites.requireCommand(command, INSTALL_HINT);
        }

        private static Path writeConfig(Map<String, Object> config) {
            try {
                Path dir = Files.createTempDirectory("kiln-testkit-imds-");
                Path file = dir.resolve("aemm-config.json");
                Files.writeString(file, Json.write(config), StandardCharsets.UTF_8);
                return file;
            } catch (IOException e) {
                throw new UncheckedIOException("could not write the metadata mock's config", e);
            }
        }

        static void deleteQuietly(Path configFile) {
            try {
                Files.deleteIfExists(configFile);
                Files.deleteIfExists(configFile.getParent());
            } catch (IOException ignored) {
                // Leftovers in the temp directory are harmless.
            }
        }

        private static Duration requireNotNegative(Duration after) {
            if (after.isNegative()) {
                throw new IllegalArgumentException("a delay cannot be negative: " + after);
            }
            return after;
        }
    }
}
