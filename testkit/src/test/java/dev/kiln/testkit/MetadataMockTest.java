package dev.kiln.testkit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.time.Instant;
import java.util.Map;
import org.junit.jupiter.api.Test;
import software.amazon.awssdk.core.document.Document;
import software.amazon.awssdk.imds.Ec2MetadataClient;

class MetadataMockTest {

    private static final String TOKEN_HEADER = "X-aws-ec2-metadata-token";
    private static final String TTL_HEADER = "X-aws-ec2-metadata-token-ttl-seconds";
    private final HttpClient http = HttpClient.newHttpClient();

    @Test
    void instanceIdRegionAndUserDataFromTheBuilderComeBackThroughTheSdkClient() {
        try (MetadataMock imds = MetadataMock.builder()
                .instanceId("i-0kiln0000000000001")
                .region("eu-west-1")
                .userData("#kiln\nrole: builder\n")
                .start()) {
            Ec2MetadataClient client = imds.client();

            assertEquals("i-0kiln0000000000001", client.get("/latest/meta-data/instance-id").asString());
            assertEquals("eu-west-1", client.get("/latest/meta-data/placement/region").asString());
            assertEquals("eu-west-1a", client.get("/latest/meta-data/placement/availability-zone").asString());
            assertEquals("#kiln\nrole: builder\n", client.get("/latest/user-data").asString());

            Map<String, Document> identity = client.get("/latest/dynamic/instance-identity/document")
                    .asDocument().asMap();
            assertEquals("i-0kiln0000000000001", identity.get("instanceId").asString());
            assertEquals("eu-west-1", identity.get("region").asString());
            assertEquals("eu-west-1a", identity.get("availabilityZone").asString());
        }
    }

    @Test
    void binaryUserDataIsServedByteForByte() throws Exception {
        byte[] userData = new byte[256];
        for (int i = 0; i < userData.length; i++) {
            userData[i] = (byte) i;
        }
        try (MetadataMock imds = MetadataMock.builder().userData(userData).allowImdsV1().start()) {
            HttpResponse<byte[]> response = http.send(
                    HttpRequest.newBuilder(imds.endpoint().resolve("/latest/user-data")).build(),
                    HttpResponse.BodyHandlers.ofByteArray());

            assertEquals(200, response.statusCode());
            assertArrayEquals(userData, response.body());
        }
    }

    @Test
    void plainImdsV1GetWithoutATokenIsRefusedWith401ByDefault() throws Exception {
        try (MetadataMock imds = MetadataMock.builder().instanceId("i-0kiln0000000000002").start()) {
            assertEquals(401, get(imds, "/latest/meta-data/instance-id", null).statusCode());
            assertEquals(401, get(imds, "/latest/meta-data/instance-id", "not-a-token").statusCode());

            String token = putToken(imds, "21600");
            HttpResponse<String> withToken = get(imds, "/latest/meta-data/instance-id", token);
            assertEquals(200, withToken.statusCode());
            assertEquals("i-0kiln0000000000002", withToken.body());
        }
    }

    @Test
    void tokenRequestsOutsideTheTtlBoundsAreRejected() throws Exception {
        try (MetadataMock imds = MetadataMock.builder().start()) {
            assertEquals(400, tokenRequest(imds, "0").statusCode());
            assertEquals(400, tokenRequest(imds, "21601").statusCode());
        }
    }

    @Test
    void plainImdsV1GetIsAnsweredWhenV1IsAllowed() throws Exception {
        try (MetadataMock imds = MetadataMock.builder().instanceId("i-0kiln0000000000003").allowImdsV1().start()) {
            HttpResponse<String> response = get(imds, "/latest/meta-data/instance-id", null);

            assertEquals(200, response.statusCode());
            assertEquals("i-0kiln0000000000003", response.body());
            assertEquals("i-0kiln0000000000003", imds.client().get("/latest/meta-data/instance-id").asString());
        }
    }

    @Test
    void instanceLaunchedWithoutUserDataAnswers404() throws Exception {
        try (MetadataMock imds = MetadataMock.builder().start()) {
            assertEquals(404, get(imds, "/latest/user-data", putToken(imds, "60")).statusCode());
        }
    }

    @Test
    void quietInstanceHasNoSpotNoticeRebalanceOrScheduledEvent() throws Exception {
        try (MetadataMock imds = MetadataMock.builder().start()) {
            String token = putToken(imds, "60");
            assertEquals(404, get(imds, "/latest/meta-data/spot/instance-action", token).statusCode());
            assertEquals(404, get(imds, "/latest/meta-data/events/recommendations/rebalance", token).statusCode());
            assertEquals(404, get(imds, "/latest/meta-data/events/maintenance/scheduled", token).statusCode());
        }
    }

    @Test
    void spotInterruptionNoticeAppearsAfterTheConfiguredDelay() throws Exception {
        try (MetadataMock imds = MetadataMock.builder()
                .spotInterruption(MetadataMock.SpotAction.STOP, Duration.ofSeconds(2))
                .start()) {
            String token = putToken(imds, "60");
            assertEquals(404, get(imds, "/latest/meta-data/spot/instance-action", token).statusCode());

            HttpResponse<String> notice = awaitOk(imds, "/latest/meta-data/spot/instance-action", token);
            assertTrue(notice.body().contains("\"action\": \"stop\""), notice.body());
            String terminationTime = get(imds, "/latest/meta-data/spot/termination-time", token).body();
            assertTrue(Instant.parse(terminationTime).isAfter(Instant.now()), terminationTime);
            // Only the interruption was asked for.
            assertEquals(404, get(imds, "/latest/meta-data/events/recommendations/rebalance", token).statusCode());
        }
    }

    @Test
    void rebalanceRecommendationAppearsWithoutAnInterruption() throws Exception {
        try (MetadataMock imds = MetadataMock.builder().rebalanceRecommendation(Duration.ZERO).start()) {
            String token = putToken(imds, "60");

            HttpResponse<String> rebalance = get(imds, "/latest/meta-data/events/recommendations/rebalance", token);
            assertEquals(200, rebalance.statusCode());
            assertTrue(rebalance.body().contains("noticeTime"), rebalance.body());
            assertEquals(404, get(imds, "/latest/meta-data/spot/instance-action", token).statusCode());
        }
    }

    @Test
    void scheduledEventIsListedWithItsCode() throws Exception {
        try (MetadataMock imds = MetadataMock.builder().scheduledEvent("instance-stop", Duration.ZERO).start()) {
            Document events = imds.client().get("/latest/meta-data/events/maintenance/scheduled").asDocument();

            assertEquals("instance-stop", events.asList().get(0).asMap().get("Code").asString());
            assertEquals("active", events.asList().get(0).asMap().get("State").asString());
        }
    }

    @Test
    void spotInterruptionAndScheduledEventMustShareTheirDelay() {
        MetadataMock.Builder builder = MetadataMock.builder()
                .spotInterruption(MetadataMock.SpotAction.TERMINATE, Duration.ZERO)
                .scheduledEvent("system-reboot", Duration.ofSeconds(5));

        assertThrows(IllegalStateException.class, builder::start);
    }

    @Test
    void closeStopsTheMockProcess() throws Exception {
        MetadataMock imds = MetadataMock.builder().start();
        ProcessHandle mock = ProcessHandle.of(imds.pid()).orElseThrow();
        URI endpoint = imds.endpoint();

        imds.close();

        assertFalse(mock.isAlive(), "ec2-metadata-mock pid " + mock.pid() + " still running");
        assertThrows(IOException.class, () -> http.send(HttpRequest.newBuilder(endpoint).build(),
                HttpResponse.BodyHandlers.discarding()));
    }

    private HttpResponse<String> tokenRequest(MetadataMock imds, String ttlSeconds) throws Exception {
        return http.send(HttpRequest.newBuilder(imds.endpoint().resolve("/latest/api/token"))
                        .header(TTL_HEADER, ttlSeconds)
                        .PUT(HttpRequest.BodyPublishers.noBody())
                        .build(),
                HttpResponse.BodyHandlers.ofString());
    }

    private String putToken(MetadataMock imds, String ttlSeconds) throws Exception {
        HttpResponse<String> response = tokenRequest(imds, ttlSeconds);
        assertEquals(200, response.statusCode(), response.body());
        assertEquals(ttlSeconds, response.headers().firstValue(TTL_HEADER).orElse(null));
        return response.body();
    }

    private HttpResponse<String> get(MetadataMock imds, String path, String token) throws Exception {
        HttpRequest.Builder request = HttpRequest.newBuilder(imds.endpoint().resolve(path));
        if (token != null) {
            request.header(TOKEN_HEADER, token);
        }
        return http.send(request.build(), HttpResponse.BodyHandlers.ofString());
    }

    private HttpResponse<String> awaitOk(MetadataMock imds, String path, String token) throws Exception {
        Instant deadline = Instant.now().plusSeconds(10);
        while (true) {
            HttpResponse<String> response = get(imds, path, token);
            if (response.statusCode() == 200 || Instant.now().isAfter(deadline)) {
                assertEquals(200, response.statusCode(), path + " never answered 200: " + response.body());
                return response;
            }
            Thread.sleep(200);
        }
    }
}
