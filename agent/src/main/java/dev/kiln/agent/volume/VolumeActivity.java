package dev.kiln.agent.volume;

import dev.kiln.agent.config.VolumeSettings;
import dev.kiln.agent.lease.BusySource;
import dev.kiln.agent.lease.DrainParticipant;
import jakarta.inject.Singleton;

import java.time.Duration;
import java.util.List;

/**
 * Volumes' part in the instance's life: a mount operation in flight keeps the agent from being
 * idle, and draining unmounts every volume Kiln mounted (honestly: holders are stopped, nothing
 * is forced) before power-off, after SSH sessions are closed.
 */
@Singleton
public final class VolumeActivity implements DrainParticipant, BusySource {

    private final VolumeService volumes;
    private final VolumeSettings settings;

    public VolumeActivity(VolumeService volumes, VolumeSettings settings) {
        this.volumes = volumes;
        this.settings = settings;
    }

    @Override
    public String step() {
        return "unmount volumes";
    }

    @Override
    public int order() {
        return 50;
    }

    @Override
    public String drain(Duration budget) {
        Duration grace = settings.unmountGrace().compareTo(budget.dividedBy(2)) < 0 ? settings.unmountGrace() : budget.dividedBy(2);
        List<String> results = volumes.unmountAll(grace.isZero() ? Duration.ofSeconds(1) : grace);
        return results.isEmpty() ? "none mounted" : String.join("; ", results);
    }

    @Override
    public List<String> busyReasons() {
        int n = volumes.operationsInFlight();
        return n == 0 ? List.of() : List.of(n + " volume operation" + (n == 1 ? "" : "s") + " in flight");
    }
}
