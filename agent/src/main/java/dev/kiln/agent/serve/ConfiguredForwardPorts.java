package dev.kiln.agent.serve;

import dev.kiln.agent.config.SshSettings;
import dev.kiln.agent.service.ServicePorts;
import jakarta.inject.Singleton;

import java.util.Set;
import java.util.TreeSet;

/** The agent's {@link ForwardPorts}: the declared services' ports and those listed in {@code kiln.ssh.forward-ports}. */
@Singleton
public class ConfiguredForwardPorts implements ForwardPorts {

    private final Set<Integer> ports;

    public ConfiguredForwardPorts(SshSettings ssh, ServicePorts services) {
        TreeSet<Integer> all = new TreeSet<>(services.ports());
        all.addAll(listed(ssh).ports());
        this.ports = Set.copyOf(all);
    }

    /** Only the ports {@code kiln.ssh.forward-ports} lists (an agent without services). */
    public static ForwardPorts listed(SshSettings ssh) {
        Set<Integer> listed = ssh.forwardPorts() == null ? Set.of() : Set.copyOf(ssh.forwardPorts());
        return () -> listed;
    }

    @Override
    public Set<Integer> ports() {
        return ports;
    }
}
