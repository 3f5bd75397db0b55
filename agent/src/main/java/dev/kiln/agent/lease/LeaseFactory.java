package dev.kiln.agent.lease;

import dev.kiln.agent.build.BuildManager;
import dev.kiln.agent.config.AgentMode;
import dev.kiln.agent.config.AgentSettings;
import dev.kiln.agent.config.BuildSettings;
import dev.kiln.agent.config.ImdsSettings;
import dev.kiln.agent.config.LeaseSettings;
import dev.kiln.agent.instance.SdkMetadataSource;
import dev.kiln.agent.logs.ActiveStreams;
import io.micronaut.context.annotation.Bean;
import io.micronaut.context.annotation.Factory;
import jakarta.inject.Singleton;
import software.amazon.awssdk.imds.Ec2MetadataRetryPolicy;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URI;
import java.nio.file.Path;
import java.time.Clock;
import java.util.ArrayList;
import java.util.List;

/** Wires the lease to its settings and mechanisms, checking the settings that only make sense together. */
@Factory
public class LeaseFactory {

    @Singleton
    @Bean(preDestroy = "close")
    LeaseKeeper leaseKeeper(AgentSettings agent, LeaseSettings s, BuildSettings buildSettings, ImdsSettings imds,
                            Clock clock, BuildManager builds, ActiveStreams streams,
                            List<DrainParticipant> participants, List<BusySource> busy) {
        boolean ec2 = agent.mode() == AgentMode.EC2;
        if (s.ttl() != null && (s.ttl().isZero() || s.ttl().isNegative())) {
            throw new IllegalArgumentException("kiln.lease.ttl must be positive, not " + s.ttl()
                    + " (for no deadline write kiln.lease.forever: true)");
        }
        if (ec2 && s.ttl() == null && !s.forever()) {
            throw new IllegalArgumentException("kiln.lease.ttl is not set: in ec2 mode every instance needs a lease "
                    + "(e.g. ttl: 2h); to run without a deadline, write kiln.lease.forever: true");
        }
        if (s.forever() && s.ttl() != null) {
            throw new IllegalArgumentException("kiln.lease.forever and kiln.lease.ttl contradict each other; set one");
        }
        if (s.ttl() != null && s.ttl().compareTo(s.maxLifetime()) > 0) {
            throw new IllegalArgumentException("kiln.lease.ttl (" + s.ttl() + ") is longer than kiln.lease.max-lifetime ("
                    + s.maxLifetime() + ")");
        }
        String backstopKind = s.backstop() != null ? s.backstop() : ec2 ? "systemd" : "none";
        Backstop backstop = switch (backstopKind) {
            case "systemd" -> new SystemdBackstop();
            case "command" -> {
                if (s.backstopCommand() == null) {
                    throw new IllegalArgumentException("kiln.lease.backstop is command but kiln.lease.backstop-command is not set");
                }
                yield new CommandBackstop(Path.of(s.backstopCommand()));
            }
            default -> Backstop.NONE;
        };
        String powerKind = s.powerOff() != null ? s.powerOff() : ec2 ? "systemd" : "exit";
        PowerControl power = powerKind.equals("systemd") ? new SystemdPowerControl()
                : new ExitPowerControl(() -> new Thread(() -> System.exit(0), "kiln-exit").start());
        NoticeSource notices = ec2
                ? new ImdsNotices(new SdkMetadataSource(imds.endpoint() == null ? null : URI.create(imds.endpoint()),
                        Ec2MetadataRetryPolicy.builder().build()))
                : NoticeSource.NONE;
        List<BusySource> sources = new ArrayList<>();
        sources.add(builds);
        sources.add(streams);
        busy.stream().filter(b -> b != builds && b != streams).forEach(sources::add);
        try {
            Lease lease = Lease.load(agent.stateDir().resolve("lease.properties"), clock,
                    s.forever() ? null : s.ttl(), s.maxLifetime());
            return new LeaseKeeper(lease, clock, builds, participants, sources, notices, backstop, power,
                    s.backstopGrace(), s.drainBudget(), buildSettings.cancelGrace(), s.idleTimeout(),
                    "drain".equals(s.rebalance()), s.imdsPoll());
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read or write the lease in " + agent.stateDir() + ": " + e.getMessage(), e);
        }
    }
}
