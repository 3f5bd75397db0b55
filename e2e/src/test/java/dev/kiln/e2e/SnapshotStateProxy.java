package dev.kiln.e2e;

import com.sun.net.httpserver.HttpServer;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import javax.xml.parsers.DocumentBuilderFactory;
import javax.xml.transform.TransformerFactory;
import javax.xml.transform.dom.DOMSource;
import javax.xml.transform.stream.StreamResult;

/**
 * A loopback proxy in front of moto that reports chosen snapshots in a chosen state in
 * DescribeSnapshots answers. It imitates what EC2 documents and moto never shows: a snapshot
 * is {@code pending} while it is taken, and ends in {@code error} when it cannot be completed
 * (e.g. an internal failure or a KMS key that cannot be used); moto completes every snapshot at once.
 */
final class SnapshotStateProxy implements AutoCloseable {
    /** The state to report for a snapshot id. */
    final Map<String, String> states = new ConcurrentHashMap<>();
    /** The state to report for any snapshot not in {@link #states} (e.g. one the test is about to take), or null. */
    volatile String otherwise;
    final HttpServer server;

    SnapshotStateProxy(URI moto) throws IOException {
        HttpClient client = HttpClient.newBuilder()
                .version(HttpClient.Version.HTTP_1_1).build();
        server = HttpServer.create(new InetSocketAddress(
                InetAddress.getLoopbackAddress(), 0), 0);
        server.createContext("/", exchange -> {
            try (exchange) {
                byte[] body = exchange.getRequestBody().readAllBytes();
                var forward = HttpRequest.newBuilder(moto.resolve(exchange.getRequestURI().toString()))
                        .POST(HttpRequest.BodyPublishers.ofByteArray(body));
                String type = exchange.getRequestHeaders().getFirst("Content-Type");
                forward.header("Content-Type", type == null ? "application/x-www-form-urlencoded" : type);
                String auth = exchange.getRequestHeaders().getFirst("Authorization");
                if (auth != null) {
                    forward.header("Authorization", auth);
                }
                var response = client.send(forward.build(), HttpResponse.BodyHandlers.ofByteArray());
                byte[] out = response.body();
                if (new String(body, StandardCharsets.UTF_8).contains("Action=DescribeSnapshots")
                        && response.statusCode() == 200) {
                    out = withStates(out);
                }
                exchange.getResponseHeaders().add("Content-Type", "text/xml;charset=UTF-8");
                exchange.sendResponseHeaders(response.statusCode(), out.length == 0 ? -1 : out.length);
                exchange.getResponseBody().write(out);
            } catch (Exception e) {
                throw new IOException(e);
            }
        });
        server.start();
    }

    /** The answer with each chosen snapshot's status replaced. */
    byte[] withStates(byte[] xml) throws Exception {
        var doc = DocumentBuilderFactory.newInstance().newDocumentBuilder()
                .parse(new ByteArrayInputStream(xml));
        var ids = doc.getElementsByTagName("snapshotId");
        for (int i = 0; i < ids.getLength(); i++) {
            String state = states.getOrDefault(ids.item(i).getTextContent().strip(), otherwise);
            var siblings = ids.item(i).getParentNode().getChildNodes();
            for (int j = 0; state != null && j < siblings.getLength(); j++) {
                if ("status".equals(siblings.item(j).getNodeName())) {
                    siblings.item(j).setTextContent(state);
                }
            }
        }
        var bytes = new ByteArrayOutputStream();
        TransformerFactory.newInstance().newTransformer().transform(
                new DOMSource(doc), new StreamResult(bytes));
        return bytes.toByteArray();
    }

    String endpoint() {
        return "http://127.0.0.1:" + server.getAddress().getPort();
    }

    @Override
    public void close() {
        server.stop(0);
    }
}
