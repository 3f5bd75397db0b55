package dev.kiln.agent.volume;

import dev.kiln.agent.build.BuildUser;
import dev.kiln.agent.config.AgentSettings;
import dev.kiln.agent.config.BuildSettings;
import dev.kiln.agent.config.VolumeMountSettings;
import dev.kiln.agent.config.VolumeSettings;
import io.micronaut.context.annotation.Bean;
import io.micronaut.context.annotation.Factory;
import io.micronaut.context.env.Environment;
import io.micronaut.core.type.Argument;
import jakarta.inject.Singleton;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.file.Path;
import java.time.Clock;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;

/** Wires the volume domain to its settings and the real OS. */
@Factory
public class VolumeFactory {

    private final Object lock = new Object();

    @Singleton
    @Bean(preDestroy = "close")
    VolumeService volumeService(AgentSettings agent, VolumeSettings settings, BuildSettings builds, Clock clock,
                                List<MountUsers> users) {
        DiskTools tools = new OsDiskTools();
        SysfsVolumes volumes = new SysfsVolumes(settings.sysfsRoot(), settings.devRoot());
        FormatDecider decider = new FormatDecider(tools);
        MountTable mounts = new MountTable();
        MountRegistry registry;
        String unreadable = null;
        try {
            registry = new MountRegistry(agent.stateDir());
        } catch (IOException e) {
            // Starting matters more than the record (the lease must run): start without it, say so,
            // and leave the file for someone to look at.
            unreadable = "cannot read the mount registry " + agent.stateDir().resolve("volumes/mounts") + " ("
                    + (e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage() + ": " + e.getClass().getSimpleName())
                    + "); the agent does not know which mounts it made before this start and keeps this run's in memory only;"
                    + " move the file aside and restart kiln-agent to start a new record";
            registry = MountRegistry.unread(agent.stateDir());
        }
        ScheduledExecutorService leases = Executors.newSingleThreadScheduledExecutor(r -> {
            Thread t = new Thread(r, "kiln-freeze-lease");
            t.setDaemon(true);
            return t;
        });
        Freezer freezer = new Freezer(tools, mounts, registry, volumes, clock, LeaseTimer.of(leases),
                settings.freezeLease(), settings.freezeMaxLease(), agent.stateDir(), lock);
        BlankProver prover = new BlankProver(volumes, tools, agent.stateDir(), settings.zeroReadTimeout(), clock);
        Mounter mounter = new Mounter(volumes, decider, prover, tools, mounts, registry, () -> {
            BuildUser u = BuildUser.resolve(builds.user());
            return new Owner(u.uid(), u.gid());
        }, settings.attachTimeout(), agent.stateDir(), lock);
        Unmounter unmounter = new Unmounter(tools, mounts, registry, new ProcProcessTable(), users, freezer,
                settings.unmountGrace(), lock);
        VolumeService service = new VolumeService(volumes, decider, mounts, registry, mounter, unmounter, freezer);
        if (unreadable != null) {
            LoggerFactory.getLogger(VolumeFactory.class).error(unreadable);
            service.reportBootProblem(unreadable);
        }
        return service;
    }

    @Singleton
    BootMounts bootMounts(VolumeService volumes, Environment environment) {
        // The whole list from the highest-precedence source (user data replaces agent.yml's list).
        List<?> raw = environment.getProperty(VolumeMountSettings.KEY, Argument.listOf(Map.class)).orElse(List.of());
        List<MountSpec> specs = VolumeMountSettings.parse(raw).stream().map(VolumeFactory::spec).toList();
        return new BootMounts(volumes, specs);
    }

    static MountSpec spec(VolumeMountSettings m) {
        boolean overlay = !m.lowerDir().isEmpty() || !m.upperDir().isEmpty();
        return new MountSpec(new VolumeRef(m.volumeId(), m.device()), Path.of(m.mountPoint()),
                Filesystem.parse(m.filesystem()), m.readOnly(), m.noexec(), m.noatime(), m.format(), m.label(), m.attachWait(),
                overlay ? Path.of(m.lowerDir()) : null, overlay ? Path.of(m.upperDir()) : null, m.createdEmpty());
    }
}
