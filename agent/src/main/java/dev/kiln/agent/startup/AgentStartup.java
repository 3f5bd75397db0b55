package dev.kiln.agent.startup;

import dev.kiln.agent.api.GrpcServerEventLoops;
import dev.kiln.agent.build.BootBuild;
import dev.kiln.agent.build.BuildManager;
import dev.kiln.agent.config.AgentMode;
import dev.kiln.agent.config.AgentSettings;
import dev.kiln.agent.config.TlsSettings;
import dev.kiln.agent.instance.ImdsRootOnly;
import dev.kiln.agent.instance.InstanceIdentity;
import dev.kiln.agent.lease.LeaseKeeper;
import dev.kiln.agent.logs.AgentLogFile;
import dev.kiln.agent.serve.Serving;
import dev.kiln.agent.service.BootScript;
import dev.kiln.agent.status.AgentInfo;
import dev.kiln.agent.tls.MutualTls;
import dev.kiln.agent.volume.BootMounts;
import dev.kiln.agent.volume.VolumeService;
import io.micronaut.context.BeanProvider;
import io.micronaut.context.annotation.Requires;
import io.micronaut.context.event.ApplicationEventListener;
import io.micronaut.context.event.ShutdownEvent;
import io.micronaut.context.event.StartupEvent;
import io.micronaut.runtime.server.EmbeddedServer;
import jakarta.inject.Singleton;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.Optional;

/**
 * The agent's start-up, once its context has started: the state directory and agent log, then
 * the checks of the TLS material and the lease settings (before any volume is touched), the IMDS
 * check (ec2 mode), the boot mounts, boot build, boot script (then the services) and SSH server,
 * and last the gRPC server and the lease. A problem stops start-up with a {@link StartupFailure} or, in ec2 mode, is handled as
 * {@link DegradedMode} says. Each bean is resolved when its step comes, so a step's settings are
 * checked in this order. Only in a context the agent's launcher made (it registers the
 * {@link DegradedMode}): other programs that have the agent on their class path, such as the
 * tests, start contexts of their own.
 */
@Singleton
@Requires(beans = DegradedMode.class)
public final class AgentStartup implements ApplicationEventListener<StartupEvent> {

    private final DegradedMode policy;
    private final InstanceIdentity identity;
    private final Console console;
    private final BeanProvider<AgentSettings> agent;
    private final BeanProvider<TlsSettings> tls;
    private final BeanProvider<LeaseKeeper> lease;
    private final BeanProvider<ImdsRootOnly> imds;
    private final BeanProvider<BootBuild> bootBuild;
    private final BeanProvider<BootMounts> bootMounts;
    private final BeanProvider<Serving> serving;
    private final BeanProvider<VolumeService> volumes;
    private final BeanProvider<EmbeddedServer> grpc;
    private final BeanProvider<AgentInfo> info;
    private final BeanProvider<BootScript> bootScript;
    /** The gRPC server once it has started; Shutdown stops it. */
    private volatile EmbeddedServer startedServer;
    private volatile boolean started;

    AgentStartup(DegradedMode policy, InstanceIdentity identity, Console console, BeanProvider<AgentSettings> agent,
                 BeanProvider<TlsSettings> tls, BeanProvider<LeaseKeeper> lease, BeanProvider<ImdsRootOnly> imds,
                 BeanProvider<BootBuild> bootBuild, BeanProvider<BootMounts> bootMounts, BeanProvider<Serving> serving,
                 BeanProvider<VolumeService> volumes, BeanProvider<EmbeddedServer> grpc, BeanProvider<AgentInfo> info,
                 BeanProvider<BootScript> bootScript) {
        this.bootScript = bootScript;
        this.policy = policy;
        this.identity = identity;
        this.console = console;
        this.agent = agent;
        this.tls = tls;
        this.lease = lease;
        this.imds = imds;
        this.bootBuild = bootBuild;
        this.bootMounts = bootMounts;
        this.serving = serving;
        this.volumes = volumes;
        this.grpc = grpc;
        this.info = info;
    }

    @Override
    public void onApplicationEvent(StartupEvent event) {
        openStateDirectory();
        // Checked first, so a missing or broken file is reported by its setting.
        Optional<String> tlsProblem = checkTls();
        // Before any volume is touched: a configuration error must stop the agent before a boot
        // mount could format anything.
        LeaseKeeper keeper = leaseKeeper();
        if (identity.mode() == AgentMode.EC2) {
            // The user data holds this agent's TLS key: only root may reach IMDS. Checked before the
            // boot build and the gRPC server, so Status reports the outcome from its first answer; a
            // problem is reported, never a reason to stop (ImdsRootOnly).
            imds.get().checkAtStart();
        }
        if (policy.degraded()) {
            // Nothing of the user data's intent is carried out: no volume is touched, no build runs.
            bootBuild.get().notStarted("the agent runs degraded (its settings are unusable; see kiln status)");
            bootScript.get().notStarted("the agent runs degraded (its settings are unusable; see kiln status)");
        } else {
            boot();
        }
        serveGrpc(tlsProblem, keeper);
        started = true;
    }

    private void openStateDirectory() {
        try {
            Path stateDir = agent.get().stateDir();
            Files.createDirectories(stateDir);
            AgentLogFile.attach(AgentLogFile.of(stateDir));
        } catch (IOException | RuntimeException e) {
            throw new StartupFailure(StartupFailure.EXIT_CONFIG,
                    "cannot use the state directory (kiln.state-dir): " + Messages.describe(e));
        }
    }

    private Optional<String> checkTls() {
        try {
            MutualTls.serverContext(tls.get());
            return Optional.empty();
        } catch (IllegalArgumentException e) {
            return Optional.of(policy.tlsUnusable(e.getMessage()));
        }
    }

    private LeaseKeeper leaseKeeper() {
        try {
            return lease.get();
        } catch (RuntimeException e) {
            throw policy.unusable("configuration error", Messages.rootMessage(e));
        }
    }

    /**
     * Boot-time mounts come before the servers accept requests, so nothing can use a mount point
     * that is not mounted yet; then the boot build, then SSH. A failed mount is logged and reported
     * by ListVolumes; the agent keeps serving so that it can be seen and fixed.
     */
    private void boot() {
        BootMounts mounts;
        try {
            mounts = bootMounts.get();
            mounts.run();
        } catch (RuntimeException e) {
            String problem = "cannot set up volumes: " + Messages.describe(e);
            policy.lateFailure(problem, StartupFailure.EXIT_CONFIG,
                    problem + "; nothing was mounted, no boot build runs and nothing is served over SSH", this::report);
            bootBuild.get().notStarted("the boot mounts could not be set up (" + Messages.describe(e) + ")");
            bootScript.get().notStarted("the boot mounts could not be set up (" + Messages.describe(e) + ")");
            return;
        }
        Map<Path, String> failedMounts = mounts.failures();
        // The boot build starts once the mounts are there (or is refused, and says why, when its
        // work tree's mount failed). It is an ordinary build from here on.
        bootBuild.get().run(failedMounts);
        // The boot script likewise (refused when a boot mount failed); the services follow it.
        bootScript.get().run(failedMounts);
        try {
            serving.get().start(failedMounts);
        } catch (Serving.NotServing e) {
            // Uploads must not land on the root disk under a failed mount: no SSH until it is fixed.
            report(e.getMessage());
        } catch (IllegalArgumentException e) {
            policy.lateFailure("configuration error: " + e.getMessage(), StartupFailure.EXIT_CONFIG,
                    "not serving over SSH: configuration error: " + e.getMessage(), this::report);
        } catch (IOException | RuntimeException e) {
            policy.lateFailure("cannot start the SSH server: " + Messages.describe(e), StartupFailure.EXIT_UNAVAILABLE,
                    "not serving over SSH: cannot start the SSH server: " + Messages.describe(e), this::report);
        }
    }

    /** Prints a boot problem and has ListVolumes and Status report it. */
    private void report(String message) {
        console.print(message);
        try {
            volumes.get().reportBootProblem(message);
        } catch (RuntimeException e) {
            // no volume service to report through: the journal has it
        }
    }

    /** Starts the gRPC server unless the TLS material cannot be used, then the lease. */
    private void serveGrpc(Optional<String> tlsProblem, LeaseKeeper keeper) {
        String ending = keeper.lease().deadline().map(d -> "it ends the instance at " + d + " (its lease)")
                .orElse("its lease has no deadline");
        if (tlsProblem.isPresent()) {
            // Unreachable over gRPC, but still on a lease: the journal is the only place to look.
            console.print("cannot serve gRPC, so kiln status cannot reach this agent: " + tlsProblem.get() + "; "
                    + ending + "; see the journal (journalctl -u kiln-agent) for the problems above");
            keeper.start();
            return;
        }
        try {
            EmbeddedServer server = grpc.get();
            server.start();
            startedServer = server;
            LoggerFactory.getLogger(AgentStartup.class).info("kiln-agent " + info.get().agentVersion() + " ("
                    + identity.mode().settingValue() + ", " + identity.instanceId() + ") listening on " + server.getHost()
                    + ":" + server.getPort() + " (gRPC, mutual TLS)"
                    + (policy.degraded() ? " DEGRADED: kiln status shows why; " + ending : ""));
        } catch (RuntimeException e) {
            String problem = "cannot start the gRPC server: " + Messages.describe(e);
            policy.lateFailure(problem, StartupFailure.EXIT_UNAVAILABLE, problem, console::print);
            // Unreachable, but the instance must still end: run on the lease alone.
            console.print("kiln status cannot reach this agent; " + ending + "; see the journal (journalctl -u kiln-agent)");
        }
        keeper.start();
    }

    /**
     * Stops a started agent in order: builds first, so their log streams end at once with the
     * builds' final records and do not hold up the gRPC server's shutdown; then the gRPC
     * server; then its event loops, so no event loop thread is left in epoll_wait when the JVM
     * exits. Runs on {@link ShutdownEvent}, before the context destroys its beans.
     */
    @Singleton
    @Requires(beans = DegradedMode.class)
    static final class Shutdown implements ApplicationEventListener<ShutdownEvent> {

        private final AgentStartup startup;
        private final BeanProvider<BuildManager> builds;
        private final BeanProvider<GrpcServerEventLoops> grpcLoops;

        Shutdown(AgentStartup startup, BeanProvider<BuildManager> builds, BeanProvider<GrpcServerEventLoops> grpcLoops) {
            this.startup = startup;
            this.builds = builds;
            this.grpcLoops = grpcLoops;
        }

        @Override
        public void onApplicationEvent(ShutdownEvent event) {
            if (!startup.started) {
                return;
            }
            builds.get().close();
            EmbeddedServer server = startup.startedServer;
            if (server != null) {
                server.stop();
            }
            grpcLoops.get().shutdown();
        }
    }
}
