package dev.kiln.agent.service;

import jakarta.inject.Singleton;

import java.util.List;

/** The TCP ports the instance's services declare (kiln.services), e.g. for SSH port forwarding. */
@Singleton
public final class ServicePorts {

    private final ServiceSupervisor services;

    public ServicePorts(ServiceSupervisor services) {
        this.services = services;
    }

    /** The declared ports, in configured order (services with and without a command). */
    public List<Integer> ports() {
        return services.ports();
    }
}
