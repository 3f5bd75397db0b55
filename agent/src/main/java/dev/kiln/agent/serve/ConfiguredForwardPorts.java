package dev.kiln.agent.serve;

import dev.kiln.agent.config.SshSettings;
import jakarta.inject.Singleton;

import java.util.Set;
import java.util.TreeSet;

/** The agent's {@link ForwardPorts}: the ports listed in {@code kiln.ssh.forward-ports}. */
@Singleton
public class ConfiguredForwardPorts implements ForwardPorts {

    private final Set<Integer> ports;

    public ConfiguredForwardPorts(SshSettings ssh) {
        this.ports = ssh.forwardPorts() == null ? Set.of() : Set.copyOf(new TreeSet<>(ssh.forwardPorts()));
    }

    @Override
    public Set<Integer> ports() {
        return ports;
    }
}
