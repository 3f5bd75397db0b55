package dev.kiln.agent.serve;

import java.util.Set;

/**
 * The loopback ports the owner may forward to with {@code ssh -L} (direct-tcpip): the extension
 * point through which whatever listens on the instance's loopback (the ports of {@code kiln.ssh.forward-ports},
 * the services' ports) is made reachable. Asked at every forwarding request, so a changed set
 * applies to the next connection.
 */
@FunctionalInterface
public interface ForwardPorts {

    /** Nothing may be forwarded. */
    ForwardPorts NONE = Set::of;

    /** The ports, each 1-65535, on 127.0.0.1 and ::1. */
    Set<Integer> ports();
}
