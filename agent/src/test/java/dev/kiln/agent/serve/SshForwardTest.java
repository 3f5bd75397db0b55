package dev.kiln.agent.serve;

import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.read.ListAppender;
import dev.kiln.testkit.FreePorts;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.slf4j.LoggerFactory;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.io.PrintWriter;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.Proxy;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Port forwarding as the real OpenSSH client experiences it: the owner reaches allowed loopback
 * ports with {@code ssh -L}; everything else (the reader, another port, another host, {@code -R},
 * {@code -D}, agent and X11 forwarding) is refused, and each refusal is logged with the user, the
 * key's fingerprint and the target.
 */
class SshForwardTest {

    @TempDir
    Path tmp;
    SshFixture f;
    final List<EchoServer> echoes = new ArrayList<>();
    final List<Process> processes = new ArrayList<>();
    ListAppender<ILoggingEvent> log;
    int allowed;
    int notAllowed;
    final Set<Integer> allowedPorts = java.util.concurrent.ConcurrentHashMap.newKeySet();

    @BeforeEach
    void start() throws Exception {
        f = new SshFixture(tmp);
        Files.writeString(f.outputs.resolve("file.txt"), "served\n");
        // The same port on 127.0.0.1, ::1 and 127.0.0.2, so a refusal is never for want of a listener.
        EchoServer v4 = echo("127.0.0.1", 0);
        allowed = v4.port();
        echo("::1", allowed);
        echo("127.0.0.2", allowed);
        notAllowed = echo("127.0.0.1", 0).port();
        allowedPorts.add(allowed);
        f.forwardPorts = () -> Set.copyOf(allowedPorts);
        f.start();
        log = new ListAppender<>();
        log.start();
        ((Logger) LoggerFactory.getLogger(PortForwarding.class)).addAppender(log);
    }

    @AfterEach
    void stop() throws Exception {
        ((Logger) LoggerFactory.getLogger(PortForwarding.class)).detachAppender(log);
        for (Process p : processes) {
            p.destroy();
            p.waitFor(10, TimeUnit.SECONDS);
        }
        echoes.forEach(EchoServer::close);
        f.close();
    }

    @Test
    void theOwnerForwardsToAnAllowedLoopbackPortAndExchangesLines() throws Exception {
        for (String target : List.of("127.0.0.1", "localhost", "[::1]")) {
            int local = forward(f.ownerKey, "owner", "-L", "%d:" + target + ":" + allowed);
            try (Line line = new Line(local)) {
                assertEquals("echo: hello " + target, line.exchange("hello " + target));
                assertEquals("echo: again", line.exchange("again"));
                // Counted while open (the readiness probe's and an earlier target's connections may still be closing).
                assertTrue(f.server.openForwards() >= 1, "an open forwarded connection is counted");
                String exit = (target.equals("[::1]") ? "::1" : "127.0.0.1") + ":" + allowed;
                assertTrue(f.server.openForwardTargets().contains(exit), exit + " in " + f.server.openForwardTargets());
            }
        }
        assertEquals(List.of(), refusals(), "nothing was refused");
    }

    @Test
    void closingForwardsCutsTheClientsConnection() throws Exception {
        int local = forward(f.ownerKey, "owner", "-L", "%d:127.0.0.1:" + allowed);
        try (Line line = new Line(local)) {
            assertEquals("echo: before", line.exchange("before"));
            assertTrue(f.server.closeForwards() >= 1, "the open connection (and perhaps the readiness probe's) is closed");
            assertNull(line.in.readLine(), "the forwarded connection ends when the drain closes it");
        }
    }

    @Test
    void bulkDataCrossesByteExactInBothDirectionsAtOnce() throws Exception {
        long size = 48L << 20;
        try (Target target = new Target(c -> {
            // Sends its bytes while reading the client's up to their end, then closes.
            Thread sender = new Thread(() -> {
                try {
                    pattern(c.getOutputStream(), 1, size);
                } catch (IOException e) {
                    // the test fails on the digest
                }
            });
            sender.start();
            String got = digest(c.getInputStream(), size + 1);
            sender.join();
            return got;
        })) {
            int local = forwardUnprobed(target.port());
            try (Socket s = new Socket("127.0.0.1", local)) {
                s.setSoTimeout(120_000);
                Thread sender = new Thread(() -> {
                    try {
                        pattern(s.getOutputStream(), 2, size);
                        s.shutdownOutput();
                    } catch (IOException e) {
                        // the test fails on the digest
                    }
                });
                sender.start();
                assertEquals(expected(1, size), digest(s.getInputStream(), size + 1), "what the target sent arrives intact");
                sender.join();
                assertEquals(expected(2, size), target.result(), "what the client sent arrives intact");
            }
        }
        assertForwardsClose();
    }

    @Test
    void dataTheTargetSentBeforeClosingArrivesInFull() throws Exception {
        long size = 6L << 20;
        try (Target target = new Target(c -> {
            pattern(c.getOutputStream(), 3, size);
            return "sent";
        })) {
            int local = forwardUnprobed(target.port());
            try (Socket s = new Socket("127.0.0.1", local)) {
                s.setSoTimeout(120_000);
                // The client reads nothing yet: the target's end reaches the agent while data still waits to be sent.
                for (int i = 0; i < 100 && !target.done(); i++) {
                    Thread.sleep(100);
                }
                assertEquals(expected(3, size), digest(s.getInputStream(), size + 1), "all of it, then the end");
                assertEquals("sent", target.result(), "the target wrote everything and closed");
            }
        }
        assertForwardsClose();
    }

    @Test
    void aClientThatHangsUpEndsTheTargetsConnection() throws Exception {
        try (Target target = new Target(c -> {
            try {
                pattern(c.getOutputStream(), 4, Long.MAX_VALUE);
            } catch (IOException e) {
                return "cut";
            }
            return "never";
        })) {
            int local = forwardUnprobed(target.port());
            try (Socket s = new Socket("127.0.0.1", local)) {
                s.setSoTimeout(60_000);
                s.getInputStream().readNBytes(1 << 20);
            }
            assertEquals("cut", target.result(), "the target's connection is closed");
        }
        assertForwardsClose();
    }

    @Test
    void aClientThatDoesNotReadHoldsUpTheTargetWithinBoundedMemory() throws Exception {
        java.util.concurrent.atomic.AtomicLong written = new java.util.concurrent.atomic.AtomicLong();
        try (Target target = new Target(c -> {
            byte[] chunk = new byte[64 * 1024];
            try (OutputStream out = c.getOutputStream()) {
                while (true) {
                    out.write(chunk);
                    written.addAndGet(chunk.length);
                }
            } catch (IOException e) {
                return "cut";
            }
        })) {
            int local = forwardUnprobed(target.port());
            try (Socket s = new Socket("127.0.0.1", local)) {
                s.setReceiveBufferSize(64 * 1024);
                s.getInputStream().readNBytes(1); // the target writes; the client reads no more
                long before = -1;
                for (int i = 0; i < 60 && written.get() != before; i++) { // until the target is held up
                    before = written.get();
                    Thread.sleep(1000);
                }
                assertEquals(before, written.get(), "the target is held up");
                // The client's window (2 MiB for OpenSSH), what the agent holds for the channel and
                // the sockets' buffers: far less than the target would write in those seconds.
                assertTrue(written.get() < (64L << 20), "the target is held up after " + (written.get() >> 20) + " MiB");
            }
            assertEquals("cut", target.result(), "once the client hangs up, the target's connection is closed (after the grace period)");
        }
        assertForwardsClose();
    }

    @Test
    void theReaderMayNotForwardAtAll() throws Exception {
        int local = forward(f.readerKey, "reader", "-L", "%d:127.0.0.1:" + allowed);
        assertRefusedConnection(local);
        assertLogged("refused local forwarding to 127.0.0.1:" + allowed + " for user reader (key " + fingerprint(f.readerKey) + ")",
                "only the owner may forward");
    }

    @Test
    void refusedChannelsLeaveNoThreadsBehind() throws Exception {
        int local = forward(f.readerKey, "reader", "-L", "%d:127.0.0.1:" + allowed);
        for (int i = 0; i < 30; i++) {
            assertRefusedConnection(local);
        }
        // A thread per refused channel would outlive it by a minute: a reader opening them in a
        // loop would pile threads up in the root agent.
        assertEquals(0, closerThreads(), "threads left by refused channels");
    }

    @Test
    void aPortNotAllowedIsRefused() throws Exception {
        int local = forward(f.ownerKey, "owner", "-L", "%d:127.0.0.1:" + notAllowed);
        assertRefusedConnection(local);
        assertLogged("refused local forwarding to 127.0.0.1:" + notAllowed + " for user owner (key " + fingerprint(f.ownerKey) + ")",
                "port " + notAllowed + " is not allowed (allowed: [" + allowed + "]");
    }

    @Test
    void anotherHostIsRefusedEvenOnAnAllowedPort() throws Exception {
        for (String host : List.of("127.0.0.2", "0.0.0.0", "127.1", "::ffff:127.0.0.1", InetAddress.getLocalHost().getHostName())) {
            int local = forward(f.ownerKey, "owner", "-L", "%d:" + (host.contains(":") ? "[" + host + "]" : host) + ":" + allowed);
            assertRefusedConnection(local);
            assertLogged("refused local forwarding to " + host + ":" + allowed + " for user owner (key " + fingerprint(f.ownerKey) + ")",
                    "only 127.0.0.1, ::1 and localhost may be reached");
        }
    }

    @Test
    void remoteForwardingIsRefused() throws Exception {
        int port = FreePorts.loopbackPort();
        List<String> opts = new ArrayList<>(f.sshOptions(f.ownerKey));
        opts.addAll(List.of("-o", "ExitOnForwardFailure=yes", "-N", "-R", "127.0.0.1:" + port + ":127.0.0.1:" + allowed));
        SshFixture.Run r = f.sshWith(opts, "owner");
        assertNotEquals(0, r.code(), r.toString());
        assertTrue(r.err().toLowerCase().contains("remote port forwarding failed"), r.toString());
        assertLogged("refused remote forwarding (tcpip-forward) of 127.0.0.1:" + port + " for user owner (key "
                + fingerprint(f.ownerKey) + ")", "remote forwarding is never allowed");
    }

    @Test
    void aSocksRequestThroughDynamicForwardingIsRefusedByTheSameRules() throws Exception {
        int socks = forward(f.ownerKey, "owner", "-D", "127.0.0.1:%d");
        for (InetSocketAddress target : List.of(InetSocketAddress.createUnresolved("127.0.0.2", allowed),
                InetSocketAddress.createUnresolved("127.0.0.1", notAllowed))) {
            try (Socket s = new Socket(new Proxy(Proxy.Type.SOCKS, new InetSocketAddress("127.0.0.1", socks)))) {
                s.setSoTimeout(30_000);
                assertThrows(IOException.class, () -> s.connect(target, 30_000), "SOCKS to " + target);
            }
            assertLogged("refused local forwarding to " + target.getHostString() + ":" + target.getPort() + " for user owner (key "
                    + fingerprint(f.ownerKey) + ")", "");
        }
    }

    @Test
    void agentForwardingIsRefusedAndLogged() throws Exception {
        Path sock = tmp.resolve("agent.sock");
        Process agent = new ProcessBuilder("ssh-agent", "-D", "-a", sock.toString()).redirectErrorStream(true)
                .redirectOutput(tmp.resolve("agent.out").toFile()).start();
        processes.add(agent);
        for (int i = 0; i < 200 && !Files.exists(sock); i++) {
            Thread.sleep(50);
        }
        List<String> cmd = new ArrayList<>(List.of("ssh", "-p", Integer.toString(f.port())));
        cmd.addAll(f.sshOptions(f.ownerKey));
        cmd.set(cmd.indexOf("IdentityAgent=none"), "IdentityAgent=" + sock);
        cmd.addAll(List.of("-o", "ForwardAgent=yes", "owner@127.0.0.1", "sha256sum", "/outputs/file.txt"));
        Process p = new ProcessBuilder(cmd).redirectOutput(tmp.resolve("x.out").toFile()).redirectError(tmp.resolve("x.err").toFile())
                .redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null"))).start();
        assertTrue(p.waitFor(60, TimeUnit.SECONDS));
        assertEquals(0, p.exitValue(), "the command itself runs: " + Files.readString(tmp.resolve("x.err")));
        assertLogged("refused agent forwarding (auth-agent-req@openssh.com) for user owner (key " + fingerprint(f.ownerKey) + ")",
                "agent forwarding is never allowed");
    }

    @Test
    void x11ForwardingIsRefusedAndLogged() throws Exception {
        List<String> cmd = new ArrayList<>(List.of("ssh", "-p", Integer.toString(f.port())));
        cmd.addAll(f.sshOptions(f.ownerKey));
        cmd.addAll(List.of("-o", "ForwardX11=yes", "-o", "XAuthLocation=/nonexistent", "owner@127.0.0.1", "sha256sum",
                "/outputs/file.txt"));
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectOutput(tmp.resolve("x.out").toFile())
                .redirectError(tmp.resolve("x.err").toFile()).redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null")));
        pb.environment().put("DISPLAY", "127.0.0.1:99"); // the client asks for X11 forwarding only with a display
        Process p = pb.start();
        assertTrue(p.waitFor(60, TimeUnit.SECONDS));
        assertEquals(0, p.exitValue(), "the command itself runs: " + Files.readString(tmp.resolve("x.err")));
        assertLogged("refused X11 forwarding (x11-req) for user owner (key " + fingerprint(f.ownerKey) + ")",
                "X11 forwarding is never allowed");
    }

    /** Starts {@code ssh -N} with one forwarding option ({@code %d} is the local port) and waits until its local port listens. */
    private int forward(Path key, String user, String option, String spec) throws Exception {
        int local = FreePorts.loopbackPort();
        List<String> cmd = new ArrayList<>(List.of("ssh", "-p", Integer.toString(f.port())));
        cmd.addAll(f.sshOptions(key));
        cmd.addAll(List.of("-o", "ExitOnForwardFailure=yes", "-N", option, String.format(spec, local), user + "@127.0.0.1"));
        Path err = Files.createTempFile(tmp, "fwd", ".err");
        Process p = new ProcessBuilder(cmd).redirectError(err.toFile()).redirectOutput(ProcessBuilder.Redirect.DISCARD)
                .redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null"))).start();
        processes.add(p);
        for (int i = 0; i < 600; i++) {
            if (!p.isAlive()) {
                throw new AssertionError("ssh " + option + " ended: exit " + p.exitValue() + ": " + Files.readString(err));
            }
            try (Socket s = new Socket()) {
                s.connect(new InetSocketAddress("127.0.0.1", local), 1000);
                return local;
            } catch (IOException e) {
                Thread.sleep(50);
            }
        }
        throw new AssertionError("ssh " + option + " never listened on " + local + ": " + Files.readString(err));
    }

    /**
     * Starts {@code ssh -N -L} to 127.0.0.1:PORT and waits until its local port listens, seen in
     * /proc/net/tcp rather than by connecting: a probe's connection would reach the target.
     */
    private int forwardUnprobed(int port) throws Exception {
        int local = FreePorts.loopbackPort();
        List<String> cmd = new ArrayList<>(List.of("ssh", "-p", Integer.toString(f.port())));
        cmd.addAll(f.sshOptions(f.ownerKey));
        cmd.addAll(List.of("-o", "ExitOnForwardFailure=yes", "-N", "-L", local + ":127.0.0.1:" + port, "owner@127.0.0.1"));
        Path err = Files.createTempFile(tmp, "fwd", ".err");
        Process p = new ProcessBuilder(cmd).redirectError(err.toFile()).redirectOutput(ProcessBuilder.Redirect.DISCARD)
                .redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null"))).start();
        processes.add(p);
        String listening = String.format("0100007F:%04X", local);
        for (int i = 0; i < 600; i++) {
            if (!p.isAlive()) {
                throw new AssertionError("ssh -L ended: exit " + p.exitValue() + ": " + Files.readString(err));
            }
            if (Files.readAllLines(Path.of("/proc/net/tcp")).stream().map(l -> l.trim().split("\\s+"))
                    .anyMatch(fields -> fields[1].equals(listening) && fields[3].equals("0A"))) {
                return local;
            }
            Thread.sleep(50);
        }
        throw new AssertionError("ssh -L never listened on " + local + ": " + Files.readString(err));
    }

    /** Every forwarded connection is gone and the threads that closed them have ended. */
    private void assertForwardsClose() throws Exception {
        for (int i = 0; i < 300 && (f.server.openForwards() > 0 || closerThreads() > 0); i++) {
            Thread.sleep(100);
        }
        assertEquals(0, f.server.openForwards(), "no forwarded connection is left open: " + f.server.openForwardTargets());
        assertEquals(0, closerThreads(), "no thread that closed a forward is left");
    }

    private static long closerThreads() {
        return Thread.getAllStackTraces().keySet().stream().filter(t -> t.getName().contains(ForwardChannel.CLOSER_THREADS)).count();
    }

    /** Writes SIZE bytes of the pattern SEED picks (a run of java.util.Random), stopping early if the peer goes. */
    private static void pattern(OutputStream out, long seed, long size) throws IOException {
        java.util.Random r = new java.util.Random(seed);
        byte[] chunk = new byte[256 * 1024];
        for (long left = size; left > 0; left -= chunk.length) {
            r.nextBytes(chunk);
            out.write(chunk, 0, (int) Math.min(left, chunk.length));
        }
        out.flush();
    }

    /** The SHA-256 and length of what pattern(SEED, SIZE) writes. */
    private static String expected(long seed, long size) throws Exception {
        java.security.MessageDigest d = java.security.MessageDigest.getInstance("SHA-256");
        try (OutputStream out = new java.security.DigestOutputStream(OutputStream.nullOutputStream(), d)) {
            pattern(out, seed, size);
        }
        return java.util.HexFormat.of().formatHex(d.digest()) + " " + size;
    }

    /** The SHA-256 and length of what IN carries up to its end (at most LIMIT bytes). */
    private static String digest(java.io.InputStream in, long limit) throws Exception {
        java.security.MessageDigest d = java.security.MessageDigest.getInstance("SHA-256");
        byte[] buf = new byte[256 * 1024];
        long n = 0;
        for (int k; n < limit && (k = in.read(buf)) >= 0; n += k) {
            d.update(buf, 0, k);
        }
        return java.util.HexFormat.of().formatHex(d.digest()) + " " + n;
    }

    /** A target on 127.0.0.1 the owner may forward to: serves one connection with a function and keeps its result. */
    final class Target implements AutoCloseable {
        interface Serve {
            String serve(Socket connection) throws Exception;
        }

        private final ServerSocket socket = new ServerSocket(0, 50, InetAddress.getByName("127.0.0.1"));
        private final java.util.concurrent.CompletableFuture<String> result = new java.util.concurrent.CompletableFuture<>();

        Target(Serve serve) throws IOException {
            allowedPorts.add(socket.getLocalPort());
            Thread t = new Thread(() -> {
                try (Socket c = socket.accept()) {
                    c.setSoTimeout(120_000);
                    result.complete(serve.serve(c));
                } catch (Exception e) {
                    result.completeExceptionally(e);
                }
            }, "target");
            t.setDaemon(true);
            t.start();
        }

        int port() {
            return socket.getLocalPort();
        }

        boolean done() {
            return result.isDone();
        }

        String result() throws Exception {
            return result.get(120, TimeUnit.SECONDS);
        }

        @Override
        public void close() throws IOException {
            socket.close();
        }
    }

    /** The client's local port accepts, and the connection ends (closed or reset) without a byte: the server refused the channel. */
    private void assertRefusedConnection(int local) throws Exception {
        try (Line line = new Line(local)) {
            line.out.println("hello");
            String got;
            try {
                got = line.in.readLine();
            } catch (java.net.SocketException reset) {
                got = null;
            }
            assertNull(got, "a refused forward carries nothing");
        }
        assertEquals(0, echoes.stream().mapToInt(e -> e.accepted.get()).sum(), "a refused forward connects to nothing");
    }

    private List<String> refusals() {
        return log.list.stream().map(ILoggingEvent::getFormattedMessage).filter(m -> m.contains("refused")).toList();
    }

    private void assertLogged(String start, String reason) {
        List<String> lines = refusals();
        assertTrue(lines.stream().anyMatch(l -> l.startsWith("ssh: " + start) && l.contains(reason)),
                "expected a log line 'ssh: " + start + " ... " + reason + "', got " + lines);
    }

    /** The key's SHA256 fingerprint, as ssh-keygen prints it. */
    private static String fingerprint(Path key) throws Exception {
        SshFixture.Run r = SshFixture.run(List.of("ssh-keygen", "-l", "-f", key + ".pub"), 30);
        return r.out().split("\\s+")[1];
    }

    private EchoServer echo(String host, int port) throws IOException {
        EchoServer e = new EchoServer(host, port);
        echoes.add(e);
        return e;
    }

    /** A line-echo TCP server: each line comes back as "echo: LINE". */
    static final class EchoServer implements AutoCloseable {
        private final ServerSocket socket;
        final java.util.concurrent.atomic.AtomicInteger accepted = new java.util.concurrent.atomic.AtomicInteger();

        EchoServer(String host, int port) throws IOException {
            socket = new ServerSocket();
            socket.bind(new InetSocketAddress(InetAddress.getByName(host), port));
            Thread t = new Thread(this::accept, "echo-" + host);
            t.setDaemon(true);
            t.start();
        }

        int port() {
            return socket.getLocalPort();
        }

        private void accept() {
            while (!socket.isClosed()) {
                try {
                    Socket s = socket.accept();
                    accepted.incrementAndGet();
                    Thread t = new Thread(() -> serve(s), "echo-conn");
                    t.setDaemon(true);
                    t.start();
                } catch (IOException e) {
                    return;
                }
            }
        }

        private static void serve(Socket s) {
            try (s; BufferedReader in = new BufferedReader(new InputStreamReader(s.getInputStream(), StandardCharsets.UTF_8));
                 OutputStream out = s.getOutputStream()) {
                String line;
                while ((line = in.readLine()) != null) {
                    out.write(("echo: " + line + "\n").getBytes(StandardCharsets.UTF_8));
                    out.flush();
                }
            } catch (IOException e) {
                // the client went away
            }
        }

        @Override
        public void close() {
            try {
                socket.close();
            } catch (IOException e) {
                // closing
            }
        }
    }

    /** A line-based client connection to a local port. */
    static final class Line implements AutoCloseable {
        final Socket socket;
        final BufferedReader in;
        final PrintWriter out;

        Line(int port) throws IOException {
            socket = new Socket("127.0.0.1", port);
            socket.setSoTimeout(30_000);
            in = new BufferedReader(new InputStreamReader(socket.getInputStream(), StandardCharsets.UTF_8));
            out = new PrintWriter(socket.getOutputStream(), true, StandardCharsets.UTF_8);
        }

        String exchange(String line) throws IOException {
            out.println(line);
            return in.readLine();
        }

        @Override
        public void close() throws IOException {
            socket.close();
        }
    }
}
