package dev.kiln.controller.ssh;

import dev.kiln.controller.KilnException;
import dev.kiln.proto.agent.v1.Service;
import dev.kiln.proto.agent.v1.StatusResponse;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** What SERVICE|PORT names on an agent, from its Status, and what kiln forward and ssh-config --forward print for it. */
class ForwardTargetTest {

    private final StatusResponse status = StatusResponse.newBuilder()
            .addServices(Service.newBuilder().setName("notebook").setPort(8888).setPath("/tree"))
            .addServices(Service.newBuilder().setName("nrepl").setPort(7888))
            .addAllSshForwardPorts(List.of(9000, 7888, 8888))
            .build();

    @Test
    void servicesComeFirstThenTheOtherAllowedPorts() {
        assertEquals(List.of(new ForwardTarget("notebook", 8888, "/tree"), new ForwardTarget("nrepl", 7888, ""),
                new ForwardTarget(null, 9000, null)), ForwardTarget.all(status));
    }

    @Test
    void aServiceWithAPathIsAUrlAndAnythingElseHostAndPort() {
        assertEquals("http://127.0.0.1:18888/tree", ForwardTarget.resolve(status, "notebook", "local-1").localAddress(18888));
        assertEquals("127.0.0.1:7888", ForwardTarget.resolve(status, "nrepl", "local-1").localAddress(7888));
        assertEquals("127.0.0.1:9000", ForwardTarget.resolve(status, "9000", "local-1").localAddress(9000));
        assertEquals("nrepl", ForwardTarget.resolve(status, "7888", "local-1").service(), "a service's port names the service");
    }

    @Test
    void anUnknownServiceOrPortIsRefusedNamingWhatThereIs() {
        KilnException port = assertThrows(KilnException.class, () -> ForwardTarget.resolve(status, "5432", "local-1"));
        assertEquals(5, port.exitCode());
        assertEquals("port 5432 on local-1 may not be forwarded (it allows notebook (port 8888), nrepl (port 7888), port 9000)",
                port.getMessage());
        KilnException name = assertThrows(KilnException.class, () -> ForwardTarget.resolve(status, "web", "local-1"));
        assertEquals(6, name.exitCode());
        KilnException none = assertThrows(KilnException.class,
                () -> ForwardTarget.resolve(StatusResponse.getDefaultInstance(), "8888", "local-1"));
        assertEquals("port 8888 on local-1 may not be forwarded (it allows no forwarding: launch it with --forward-port PORT"
                + " or a service with a port)", none.getMessage());
    }

    @Test
    void sshConfigGetsALocalForwardPerTarget() {
        assertEquals("""
                  # notebook (port 8888): http://127.0.0.1:8888/tree
                  LocalForward 127.0.0.1:8888 127.0.0.1:8888
                  # nrepl (port 7888): 127.0.0.1:7888
                  LocalForward 127.0.0.1:7888 127.0.0.1:7888
                  # port 9000: 127.0.0.1:9000
                  LocalForward 127.0.0.1:9000 127.0.0.1:9000
                """, SshTarget.localForwards(ForwardTarget.all(status)));
    }
}
