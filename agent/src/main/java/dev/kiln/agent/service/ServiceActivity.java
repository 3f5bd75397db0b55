package dev.kiln.agent.service;

import dev.kiln.agent.config.BuildSettings;
import dev.kiln.agent.lease.BusySource;
import dev.kiln.agent.lease.DrainParticipant;
import jakarta.inject.Singleton;

import java.time.Duration;
import java.util.List;

/**
 * Services' part in the instance's life: a running service that keeps the instance alive
 * ({@code keeps-alive: true}) keeps the agent from being idle, others do not; draining stops every
 * service (TERM to its process group, KILL after {@code kiln.builds.cancel-grace}) after SSH
 * sessions are closed and before volumes are unmounted, which the services may be using.
 */
@Singleton
public final class ServiceActivity implements DrainParticipant, BusySource {

    private final ServiceSupervisor services;
    private final Duration grace;

    public ServiceActivity(ServiceSupervisor services, BuildSettings builds) {
        this.services = services;
        this.grace = builds.cancelGrace();
    }

    @Override
    public String step() {
        return "stop services";
    }

    @Override
    public int order() {
        return 45;
    }

    @Override
    public String drain(Duration budget) {
        Duration g = grace.compareTo(budget.dividedBy(2)) < 0 ? grace : budget.dividedBy(2);
        List<String> stopped = services.stopAll(g.isZero() ? Duration.ofSeconds(1) : g);
        return stopped.isEmpty() ? "none running" : "stopped " + String.join(", ", stopped);
    }

    @Override
    public List<String> busyReasons() {
        return services.busyReasons();
    }
}
