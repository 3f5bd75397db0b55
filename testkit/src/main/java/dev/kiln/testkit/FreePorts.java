package dev.kiln.testkit;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.ServerSocket;

/** Ephemeral TCP ports on the loopback address, for servers a test starts. */
public final class FreePorts {

    private FreePorts() {
    }

    /**
     * Asks the kernel for a TCP port that is free on 127.0.0.1 right now.
     *
     * <p>The port is released before this returns, so another process could take it before the
     * caller binds it; with the kernel handing out ephemeral ports in turn, that is rare enough for
     * tests. Prefer binding port 0 directly where the server under test allows it.
     *
     * @return a port number between 1024 and 65535
     */
    public static int loopbackPort() {
        try (ServerSocket socket = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            return socket.getLocalPort();
        } catch (IOException e) {
            throw new UncheckedIOException("could not bind an ephemeral port on 127.0.0.1", e);
        }
    }
}
