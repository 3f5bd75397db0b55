package dev.kiln.testkit;

import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A network namespace of the test's own ({@code ip netns add}) with its loopback interface up, in
 * which servers can have the addresses they have on EC2 (169.254.169.254 for IMDS) while no packet
 * leaves the machine: the namespace has no interface but its loopback, so no route out. Commands
 * run inside through {@code ip netns exec}. Closing it deletes the namespace, and with it its
 * interfaces, addresses and nftables tables.
 *
 * <pre>{@code
 * try (NetworkNamespace ns = NetworkNamespace.create("kiln-imds-test")) {
 *     ns.addLoopbackAddress("169.254.169.254/32");
 *     List<String> inside = ns.exec(List.of("curl", "http://169.254.169.254/"));
 * }
 * }</pre>
 *
 * <p>Needs root and {@code ip} (iproute2); skips the test without them, fails it under {@code CI=true}.
 */
public final class NetworkNamespace implements AutoCloseable {

    /** How to get {@code ip}. */
    public static final String INSTALL_HINT = "apt-get install iproute2 (bash .ci/install does it)";

    private static final AtomicInteger COUNTER = new AtomicInteger();
    private static final Duration COMMAND_TIMEOUT = Duration.ofSeconds(30);

    private final String ip;
    private final String name;
    private final Thread shutdownHook;
    private boolean closed;

    private NetworkNamespace(String ip, String name) {
        this.ip = ip;
        this.name = name;
        // A test killed half-way (Surefire's timeout) must not leave its namespace behind.
        this.shutdownHook = new Thread(this::delete, "delete netns " + name);
        Runtime.getRuntime().addShutdownHook(shutdownHook);
    }

    /**
     * Creates the namespace {@code PREFIX-PID-N} (this JVM's pid, a counter) and brings its
     * loopback up. Namespaces {@code PREFIX-PID-N} of JVMs that are gone (killed before they could
     * clean up) are deleted first; no other namespace is touched.
     *
     * @param prefix names the test, e.g. "kiln-imds-test"
     */
    public static NetworkNamespace create(String prefix) {
        Prerequisites.requireRoot("creating a network namespace (ip netns add)");
        String ip = Prerequisites.requireCommand("ip", INSTALL_HINT).toString();
        deleteLeftovers(ip, prefix);
        String name = prefix + "-" + ProcessHandle.current().pid() + "-" + COUNTER.incrementAndGet();
        Commands.run(ip, "netns", "add", name).orThrow();
        NetworkNamespace ns = new NetworkNamespace(ip, name);
        try {
            ns.ip("link", "set", "lo", "up");
        } catch (RuntimeException e) {
            ns.close();
            throw e;
        }
        return ns;
    }

    /** The namespace's name, as {@code ip netns list} shows it. */
    public String name() {
        return name;
    }

    /** Adds an address (with its prefix length, e.g. "169.254.169.254/32" or "fd00:ec2::254/128") to loopback. */
    public void addLoopbackAddress(String cidr) {
        ip("addr", "add", cidr, "dev", "lo");
    }

    /** Runs {@code ip -n NAME ARGS...} (an ip command applied inside the namespace); throws unless it exits 0. */
    public void ip(String... args) {
        List<String> argv = new ArrayList<>(List.of(ip, "-n", name));
        argv.addAll(List.of(args));
        Commands.run(argv.toArray(String[]::new)).orThrow();
    }

    /** {@code command} prefixed so that it runs inside the namespace ({@code ip netns exec NAME}, which execs it). */
    public List<String> exec(List<String> command) {
        List<String> argv = new ArrayList<>(List.of(ip, "netns", "exec", name));
        argv.addAll(command);
        return argv;
    }

    /**
     * Whether a TCP connection to {@code host:port} succeeds inside the namespace (as root), tried
     * with bash's /dev/tcp: how a fixture waits for a server it started in here.
     */
    public boolean connects(String host, int port) {
        String bare = host.startsWith("[") && host.endsWith("]") ? host.substring(1, host.length() - 1) : host;
        List<String> probe = exec(List.of("bash", "-c", "exec 3<>\"/dev/tcp/$1/$2\"", "probe", bare, Integer.toString(port)));
        try {
            Process p = new ProcessBuilder(probe).redirectErrorStream(true)
                    .redirectOutput(ProcessBuilder.Redirect.DISCARD)
                    .redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null"))).start();
            if (!p.waitFor(COMMAND_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS)) {
                p.destroyForcibly();
                return false;
            }
            return p.exitValue() == 0;
        } catch (java.io.IOException e) {
            return false;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return false;
        }
    }

    /** Polls {@link #connects} until it succeeds; false if it still fails after {@code timeout}. */
    public boolean awaitListening(String host, int port, Duration timeout) {
        Instant deadline = Instant.now().plus(timeout);
        while (true) {
            if (connects(host, port)) {
                return true;
            }
            if (Instant.now().isAfter(deadline)) {
                return false;
            }
            try {
                Thread.sleep(100);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return false;
            }
        }
    }

    /** Deletes the namespace (its interfaces, addresses and tables go with it). Safe to call twice. */
    @Override
    public synchronized void close() {
        if (closed) {
            return;
        }
        closed = true;
        delete();
        try {
            Runtime.getRuntime().removeShutdownHook(shutdownHook);
        } catch (IllegalStateException alreadyShuttingDown) {
            // The hook is running or ran.
        }
    }

    private void delete() {
        Commands.Result r = Commands.run(ip, "netns", "del", name);
        if (!r.succeeded() && !r.stderr().contains("No such file")) {
            throw new IllegalStateException(r.describe());
        }
    }

    /** Deletes PREFIX-PID-N namespaces whose JVM (PID) is no longer running. */
    private static void deleteLeftovers(String ip, String prefix) {
        Pattern ours = Pattern.compile("^" + Pattern.quote(prefix) + "-(\\d+)-\\d+$");
        for (String line : Commands.run(ip, "netns", "list").stdout().lines().toList()) {
            String ns = line.split("\\s+")[0];
            Matcher m = ours.matcher(ns);
            if (m.matches() && ProcessHandle.of(Long.parseLong(m.group(1))).isEmpty()) {
                Commands.run(ip, "netns", "del", ns);
            }
        }
    }
}
