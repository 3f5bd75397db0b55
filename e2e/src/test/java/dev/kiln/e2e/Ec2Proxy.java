package dev.kiln.e2e;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import software.amazon.awssdk.services.ec2.Ec2Client;

import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.URI;
import java.net.URLDecoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A loopback proxy in front of moto_server that behaves as EC2 documents where moto is lenient.
 * EC2's API is the Query protocol (a form-encoded POST, an XML answer); the proxy reads the
 * form, keeps a little state, answers some requests itself with EC2's XML error document, and
 * forwards the rest to moto unchanged. What it imitates, each from AWS's documentation:
 * <ul>
 *   <li><b>Eventual consistency</b> ("Eventual consistency in the Amazon EC2 API"): for
 *       {@link #notFoundFor} after CreateVolume, CreateSnapshot or RunInstances, a request naming
 *       the new resource by id fails with InvalidVolume.NotFound, InvalidSnapshot.NotFound or
 *       InvalidInstanceID.NotFound.</li>
 *   <li><b>Idempotency</b> ("Ensuring idempotency in Amazon EC2 API requests"): a request with a
 *       ClientToken already used for the same action gets the first answer again when its
 *       parameters are identical, and IdempotentParameterMismatch when they differ.</li>
 *   <li><b>AttachVolume</b> ("The volume and instance must be in the same Availability Zone"):
 *       across zones, InvalidVolume.ZoneMismatch; to an instance that is not running,
 *       IncorrectState.</li>
 *   <li><b>DeleteSnapshot</b> ("You can't delete a snapshot of the root device of an EBS volume
 *       used by a registered AMI"): of a snapshot an AMI uses, or that a volume is still being
 *       created from (within the consistency window), InvalidSnapshot.InUse.</li>
 * </ul>
 * It can also hold instances in {@code pending} (one that never reaches running) and answer an
 * action with an injected error. Everything listens and forwards on loopback only.
 */
final class Ec2Proxy implements AutoCloseable {

    private static final Set<String> HOP_BY_HOP = Set.of("connection", "content-length", "expect", "host", "upgrade",
            "transfer-encoding", "keep-alive");
    private static final Pattern CREATED_ID = Pattern.compile("<(volumeId|snapshotId|instanceId)>((?:vol|snap|i)-[0-9a-f]+)<");
    private static final Pattern INSTANCE_STATE = Pattern.compile("<instanceState>(.*?)</instanceState>", Pattern.DOTALL);

    private record Answer(int status, byte[] body, String contentType) {
    }

    private final URI moto;
    private final Ec2Client direct;
    private final HttpServer server;
    private final HttpClient client = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();
    private final Map<String, Long> createdAt = new ConcurrentHashMap<>();
    private final Map<String, String> volumeSnapshot = new ConcurrentHashMap<>();
    private final Map<String, String> tokenParams = new ConcurrentHashMap<>();
    private final Map<String, Answer> tokenAnswers = new ConcurrentHashMap<>();
    private final List<String> actions = Collections.synchronizedList(new ArrayList<>());
    private final List<String> errors = Collections.synchronizedList(new ArrayList<>());
    private volatile Duration notFoundFor = Duration.ZERO;
    private volatile boolean holdPending;
    private volatile String[] injected;
    private volatile String failure;

    /**
     * @param moto   moto_server's endpoint (loopback)
     * @param direct a client talking to moto directly, for the state the proxy checks
     */
    Ec2Proxy(URI moto, Ec2Client direct) {
        this.moto = moto;
        this.direct = direct;
        try {
            server = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 0);
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
        server.createContext("/", this::handle);
        server.start();
    }

    /** Where the controller sends EC2 requests. */
    URI endpoint() {
        return URI.create("http://127.0.0.1:" + server.getAddress().getPort());
    }

    /** New volumes, snapshots and instances are NotFound by id for this long after their create. */
    Ec2Proxy notFoundFor(Duration window) {
        this.notFoundFor = window;
        return this;
    }

    /** Instances show as pending, never running (an instance that never comes up). */
    void holdPending(boolean hold) {
        this.holdPending = hold;
    }

    /** Answers every request for {@code action} with this EC2 error until cleared (null code). */
    void failEvery(String action, String code, String message, int status) {
        injected = code == null ? null : new String[]{action, code, message, Integer.toString(status)};
    }

    /** The actions received, in order. */
    List<String> actions() {
        synchronized (actions) {
            return List.copyOf(actions);
        }
    }

    /** The error codes the proxy answered by itself, in order. */
    List<String> errors() {
        synchronized (errors) {
            return List.copyOf(errors);
        }
    }

    /** What went wrong inside the proxy itself, if anything (tests assert it is null). */
    String failure() {
        return failure;
    }

    private void handle(HttpExchange exchange) throws IOException {
        try {
            byte[] body = exchange.getRequestBody().readAllBytes();
            Map<String, String> form = form(new String(body, StandardCharsets.UTF_8));
            String action = form.getOrDefault("Action", "");
            actions.add(action);
            Answer answer = answer(exchange, action, form, body);
            exchange.getResponseHeaders().set("Content-Type", answer.contentType());
            exchange.sendResponseHeaders(answer.status(), answer.body().length == 0 ? -1 : answer.body().length);
            exchange.getResponseBody().write(answer.body());
        } catch (Exception e) {
            failure = "EC2 proxy: " + e;
            exchange.sendResponseHeaders(502, -1);
        } finally {
            exchange.close();
        }
    }

    private Answer answer(HttpExchange exchange, String action, Map<String, String> form, byte[] body) throws Exception {
        String[] fail = injected;
        if (fail != null && fail[0].equals(action)) {
            return error(Integer.parseInt(fail[3]), fail[1], fail[2]);
        }
        Answer refused = notYetVisible(action, form);
        if (refused == null) {
            try {
                refused = refused(action, form);
            } catch (software.amazon.awssdk.awscore.exception.AwsServiceException unknown) {
                // an id moto does not know: moto answers with its own NotFound
            }
        }
        if (refused != null) {
            return refused;
        }
        String token = form.get("ClientToken");
        String key = action + "\n" + token;
        if (token != null && token.length() > 64) {
            return error(400, "InvalidParameterValue", "Value (" + token + ") for parameter clientToken is invalid."
                    + " Length exceeds maximum of 64 characters.");
        }
        if (token != null) {
            String params = new TreeMap<>(form).toString();
            String before = tokenParams.putIfAbsent(key, params);
            if (before != null && !before.equals(params)) {
                return error(400, "IdempotentParameterMismatch", "The client token " + token
                        + " was used with different parameters in an earlier " + action + " request.");
            }
            if (before != null) {
                Answer first = tokenAnswers.get(key);
                if (first != null) {
                    return first;
                }
            }
        }
        Answer forwarded = forward(exchange, body);
        if (forwarded.status() == 200) {
            remember(action, form, forwarded);
            if (token != null) {
                tokenAnswers.put(key, forwarded);
            }
        } else if (token != null) {
            tokenParams.remove(key); // a failed request does not use up its token
        }
        if (holdPending && action.equals("DescribeInstances")) {
            return new Answer(forwarded.status(), pending(forwarded.body()), forwarded.contentType());
        }
        return forwarded;
    }

    /** Records when a resource was created (and a volume's snapshot) from a successful create's answer. */
    private void remember(String action, Map<String, String> form, Answer answer) {
        if (!Set.of("CreateVolume", "CreateSnapshot", "RunInstances").contains(action)) {
            return;
        }
        Matcher m = CREATED_ID.matcher(new String(answer.body(), StandardCharsets.UTF_8));
        long now = System.nanoTime();
        while (m.find()) {
            createdAt.putIfAbsent(m.group(2), now);
            if (action.equals("CreateVolume") && form.get("SnapshotId") != null) {
                volumeSnapshot.put(m.group(2), form.get("SnapshotId"));
            }
            if (!action.equals("RunInstances")) {
                break; // the first id is the new resource; later ones are what it came from
            }
        }
    }

    /** The NotFound EC2 answers for a resource named by id just after its create (eventual consistency). */
    private Answer notYetVisible(String action, Map<String, String> form) {
        for (var e : form.entrySet()) {
            String name = e.getKey();
            if (!(name.equals("VolumeId") || name.startsWith("VolumeId.") || name.equals("SnapshotId")
                    || name.startsWith("SnapshotId.") || name.equals("InstanceId") || name.startsWith("InstanceId."))) {
                continue;
            }
            Long created = createdAt.get(e.getValue());
            if (created == null || System.nanoTime() - created >= notFoundFor.toNanos()) {
                continue;
            }
            String id = e.getValue();
            String code = id.startsWith("vol-") ? "InvalidVolume.NotFound" : id.startsWith("snap-") ? "InvalidSnapshot.NotFound"
                    : "InvalidInstanceID.NotFound";
            String what = id.startsWith("vol-") ? "volume" : id.startsWith("snap-") ? "snapshot" : "instance ID";
            return error(400, code, "The " + what + " '" + id + "' does not exist.");
        }
        return null;
    }

    /** What EC2 refuses that moto lets through. */
    private Answer refused(String action, Map<String, String> form) {
        if (action.equals("AttachVolume")) {
            String volumeId = form.get("VolumeId");
            String instanceId = form.get("InstanceId");
            var volume = direct.describeVolumes(r -> r.volumeIds(volumeId)).volumes().get(0);
            var instance = direct.describeInstances(r -> r.instanceIds(instanceId)).reservations().get(0).instances().get(0);
            if (!volume.availabilityZone().equals(instance.placement().availabilityZone())) {
                return error(400, "InvalidVolume.ZoneMismatch", "The volume '" + volumeId + "' is not in the same availability"
                        + " zone as instance '" + instanceId + "'");
            }
            if (holdPending || !instance.state().nameAsString().equals("running")) {
                return error(400, "IncorrectState", "Instance '" + instanceId + "' is not 'running'.");
            }
            if (!volume.attachments().isEmpty()) {
                return error(400, "VolumeInUse", volumeId + " is already attached to an instance");
            }
        }
        if (action.equals("DeleteSnapshot")) {
            String snapshotId = form.get("SnapshotId");
            // moto lacks the block-device-mapping.snapshot-id filter: the account's images are few.
            var images = direct.describeImages(r -> r.owners("self")).images().stream().filter(i -> i.blockDeviceMappings()
                    .stream().anyMatch(b -> b.ebs() != null && snapshotId.equals(b.ebs().snapshotId()))).toList();
            if (!images.isEmpty()) {
                return error(400, "InvalidSnapshot.InUse", "The snapshot " + snapshotId + " is currently in use by "
                        + images.get(0).imageId());
            }
            for (var e : volumeSnapshot.entrySet()) {
                Long created = createdAt.get(e.getKey());
                if (e.getValue().equals(snapshotId) && created != null && System.nanoTime() - created < notFoundFor.toNanos()) {
                    return error(400, "InvalidSnapshot.InUse", "The snapshot " + snapshotId + " is in use: volume "
                            + e.getKey() + " is still being created from it");
                }
            }
        }
        return null;
    }

    /** An instance description with every running instance shown as pending. */
    private static byte[] pending(byte[] body) {
        Matcher m = INSTANCE_STATE.matcher(new String(body, StandardCharsets.UTF_8));
        StringBuilder out = new StringBuilder();
        while (m.find()) {
            m.appendReplacement(out, Matcher.quoteReplacement("<instanceState>" + m.group(1)
                    .replace("<code>16</code>", "<code>0</code>").replace("<name>running</name>", "<name>pending</name>")
                    + "</instanceState>"));
        }
        m.appendTail(out);
        return out.toString().getBytes(StandardCharsets.UTF_8);
    }

    private Answer forward(HttpExchange exchange, byte[] body) throws IOException, InterruptedException {
        HttpRequest.Builder forward = HttpRequest.newBuilder(moto.resolve(exchange.getRequestURI().toString()))
                .method(exchange.getRequestMethod(), HttpRequest.BodyPublishers.ofByteArray(body));
        exchange.getRequestHeaders().forEach((k, values) -> {
            if (!HOP_BY_HOP.contains(k.toLowerCase())) {
                values.forEach(v -> forward.header(k, v));
            }
        });
        HttpResponse<byte[]> response = client.send(forward.build(), HttpResponse.BodyHandlers.ofByteArray());
        return new Answer(response.statusCode(), response.body(),
                response.headers().firstValue("Content-Type").orElse("text/xml;charset=UTF-8"));
    }

    /** EC2's error document, which the SDK parses as it parses EC2's own. */
    private Answer error(int status, String code, String message) {
        errors.add(code);
        String xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>" + code + "</Code><Message>"
                + message.replace("&", "&amp;").replace("<", "&lt;") + "</Message></Error></Errors><RequestID>"
                + UUID.randomUUID() + "</RequestID></Response>";
        return new Answer(status, xml.getBytes(StandardCharsets.UTF_8), "text/xml;charset=UTF-8");
    }

    private static Map<String, String> form(String body) {
        Map<String, String> out = new TreeMap<>();
        for (String pair : body.split("&")) {
            int eq = pair.indexOf('=');
            if (eq > 0) {
                out.put(URLDecoder.decode(pair.substring(0, eq), StandardCharsets.UTF_8),
                        URLDecoder.decode(pair.substring(eq + 1), StandardCharsets.UTF_8));
            }
        }
        return out;
    }

    @Override
    public void close() {
        server.stop(0);
    }
}
