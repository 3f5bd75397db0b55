package dev.kiln.agent.schedule;

import dev.kiln.agent.build.BuildUser;
import dev.kiln.agent.build.OsProcessLauncher;
import dev.kiln.agent.config.AgentMode;
import dev.kiln.agent.config.AgentSettings;
import dev.kiln.agent.config.BuildSettings;
import dev.kiln.agent.config.ScheduleSettings;
import dev.kiln.agent.config.SnapshotSettings;
import dev.kiln.agent.config.VolumeSettings;
import dev.kiln.agent.instance.InstanceIdentity;
import dev.kiln.agent.volume.VolumeService;
import io.micronaut.context.annotation.Bean;
import io.micronaut.context.annotation.Factory;
import io.micronaut.context.env.Environment;
import io.micronaut.core.type.Argument;
import jakarta.inject.Singleton;

import java.net.URI;
import java.time.Clock;
import java.util.List;
import java.util.Map;

/** Wires snapshot schedules to their settings, the volumes and the backend of this agent's mode. */
@Factory
public class ScheduleFactory {

    @Singleton
    @Bean(preDestroy = "close")
    ScheduleRunner scheduleRunner(AgentSettings agent, SnapshotSettings settings, VolumeSettings volumeSettings,
                                  BuildSettings builds, InstanceIdentity identity, VolumeService volumes, Clock clock,
                                  Environment environment) {
        SnapshotBackend backend = null;
        String noBackend = "";
        if (identity.mode() == AgentMode.EC2) {
            backend = new Ec2SnapshotBackend(identity.region(), settings.ec2Endpoint() == null ? null
                    : URI.create(settings.ec2Endpoint()), identity.instanceId(), settings.freezeLease());
        } else if (settings.store() != null) {
            backend = new LocalSnapshotBackend(settings.store(), volumeSettings.sysfsRoot(), identity.instanceId());
        } else {
            noBackend = "it runs in local mode without a snapshot store (kiln.snapshots.store, which kiln launch sets on the"
                    + " local provider)";
        }
        HookCommand hooks = new HookCommand(new OsProcessLauncher(), () -> BuildUser.resolve(builds.user()),
                settings.commandTimeout());
        ScheduleRunner runner = new ScheduleRunner(new ScheduleStore(agent.stateDir()), volumes, backend, noBackend, hooks,
                clock, settings.freezeLease(), settings.catchUp(), settings.retryBackoff());
        // The whole list from the highest-precedence source (user data replaces agent.yml's list).
        List<?> raw = environment.getProperty(ScheduleSettings.KEY, Argument.listOf(Map.class)).orElse(List.of());
        List<ScheduleSpec> specs = ScheduleSettings.parse(raw);
        runner.applySettings(specs, ScheduleSettings.key(specs));
        return runner;
    }
}
