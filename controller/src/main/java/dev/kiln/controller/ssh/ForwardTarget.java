package dev.kiln.controller.ssh;

import dev.kiln.controller.ExitCodes;
import dev.kiln.controller.KilnException;
import dev.kiln.proto.agent.v1.Service;
import dev.kiln.proto.agent.v1.StatusResponse;

import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;

/**
 * A loopback port on an instance that its owner may forward to: a service's (with its name and
 * link path) or one of {@code kiln.ssh.forward-ports} (no name).
 *
 * @param service the service's name, or null
 * @param port    the port on the instance's loopback
 * @param path    the service's link path as its Status gives it, or null (or empty) for a port that is no web page
 */
public record ForwardTarget(String service, int port, String path) {

    /** Every port the agent's Status says may be forwarded: services in order, then the other allowed ports, ascending. */
    public static List<ForwardTarget> all(StatusResponse status) {
        List<ForwardTarget> out = new ArrayList<>();
        Set<Integer> seen = new LinkedHashSet<>();
        for (Service s : status.getServicesList()) {
            if (s.getPort() > 0 && seen.add(s.getPort())) {
                out.add(new ForwardTarget(s.getName(), s.getPort(), s.getPath()));
            }
        }
        status.getSshForwardPortsList().stream().sorted().filter(seen::add).forEach(p -> out.add(new ForwardTarget(null, p, null)));
        return out;
    }

    /**
     * What {@code SERVICE|PORT} names on the agent: a service by name, or a port the agent allows.
     *
     * @throws KilnException naming the services and ports there are, when it names none of them
     */
    public static ForwardTarget resolve(StatusResponse status, String word, String instance) {
        List<ForwardTarget> all = all(status);
        String there = all.isEmpty() ? "it allows no forwarding: launch it with --forward-port PORT or a service with a port"
                : "it allows " + String.join(", ", all.stream().map(ForwardTarget::describe).toList());
        if (word.matches("\\d{1,5}")) {
            int port = Integer.parseInt(word);
            return all.stream().filter(t -> t.port() == port).findFirst().orElseThrow(() -> new KilnException(ExitCodes.REFUSED,
                    "port " + port + " on " + instance + " may not be forwarded (" + there + ")"));
        }
        return all.stream().filter(t -> word.equals(t.service())).findFirst().orElseThrow(() -> new KilnException(
                ExitCodes.NOT_FOUND, "no service '" + word + "' on " + instance + " (" + there + ")"));
    }

    /** {@code web (port 8000)} or {@code port 7888}. */
    public String describe() {
        return service != null ? service + " (port " + port + ")" : "port " + port;
    }

    /** Where a browser or client reaches it through a forward on {@code localPort}: a URL for a service with a path, else host:port. */
    public String localAddress(int localPort) {
        return path != null && !path.isEmpty() ? "http://127.0.0.1:" + localPort + (path.startsWith("/") ? path : "/" + path)
                : "127.0.0.1:" + localPort;
    }
}
