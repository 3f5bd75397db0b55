package dev.kiln.agent.api;

import dev.kiln.agent.config.AgentMode;
import dev.kiln.agent.status.AgentInfo;
import dev.kiln.proto.agent.v1.AgentGrpc;
import dev.kiln.proto.agent.v1.AgentState;
import dev.kiln.proto.agent.v1.Build;
import dev.kiln.proto.agent.v1.CancelBuildRequest;
import dev.kiln.proto.agent.v1.ExtendLeaseRequest;
import dev.kiln.proto.agent.v1.FreezeRequest;
import dev.kiln.proto.agent.v1.FreezeResponse;
import dev.kiln.proto.agent.v1.GetBuildRequest;
import dev.kiln.proto.agent.v1.Lease;
import dev.kiln.proto.agent.v1.ListBuildsRequest;
import dev.kiln.proto.agent.v1.ListBuildsResponse;
import dev.kiln.proto.agent.v1.ListVolumesRequest;
import dev.kiln.proto.agent.v1.ListVolumesResponse;
import dev.kiln.proto.agent.v1.LogChunk;
import dev.kiln.proto.agent.v1.Mode;
import dev.kiln.proto.agent.v1.MountRequest;
import dev.kiln.proto.agent.v1.MountResponse;
import dev.kiln.proto.agent.v1.ListSchedulesRequest;
import dev.kiln.proto.agent.v1.ListSchedulesResponse;
import dev.kiln.proto.agent.v1.Schedule;
import dev.kiln.proto.agent.v1.SetScheduleRequest;
import dev.kiln.proto.agent.v1.ShutdownRequest;
import dev.kiln.proto.agent.v1.ShutdownResponse;
import dev.kiln.proto.agent.v1.StartBuildRequest;
import dev.kiln.proto.agent.v1.StatusRequest;
import dev.kiln.proto.agent.v1.StatusResponse;
import dev.kiln.proto.agent.v1.StreamLogsRequest;
import dev.kiln.proto.agent.v1.ThawRequest;
import dev.kiln.proto.agent.v1.ThawResponse;
import dev.kiln.proto.agent.v1.UnmountRequest;
import dev.kiln.proto.agent.v1.UnmountResponse;
import io.grpc.Status;
import io.grpc.stub.ServerCallStreamObserver;
import io.grpc.stub.StreamObserver;
import dev.kiln.agent.build.BootBuild;
import dev.kiln.agent.build.BuildCodec;
import dev.kiln.agent.instance.ImdsRootOnly;
import dev.kiln.agent.status.Problems;
import dev.kiln.agent.build.BuildManager;
import dev.kiln.agent.config.AgentSettings;
import dev.kiln.agent.logs.AgentLogFile;
import dev.kiln.agent.logs.ActiveStreams;
import dev.kiln.agent.lease.LeaseKeeper;
import dev.kiln.proto.agent.v1.EndReason;
import dev.kiln.agent.logs.LogSource;
import dev.kiln.agent.logs.PolledFileSource;
import dev.kiln.agent.volume.UnmountResult;
import dev.kiln.agent.volume.VolumeCodec;
import dev.kiln.agent.volume.VolumeService;
import dev.kiln.agent.build.BuildRecord;
import dev.kiln.agent.logs.LogTruncatedException;
import dev.kiln.agent.logs.RotatingLog;
import dev.kiln.agent.service.BootScript;
import dev.kiln.agent.service.ServiceCodec;
import dev.kiln.agent.service.ServiceNotFoundException;
import dev.kiln.agent.service.ServiceSupervisor;
import jakarta.annotation.PreDestroy;
import java.nio.file.Path;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;
import jakarta.inject.Singleton;

/**
 * The gRPC adapter for the Agent service: translates requests to the domain classes and their
 * answers and errors to protobuf and gRPC status. No decisions are made here.
 */
@Singleton
public class AgentGrpcService extends AgentGrpc.AgentImplBase {

    private final AgentInfo info;
    private final BuildManager builds;
    private final VolumeService volumes;
    private final Path agentLog;
    private final ExecutorService streams = Executors.newCachedThreadPool(r -> {
        Thread t = new Thread(r, "kiln-log-stream");
        t.setDaemon(true);
        return t;
    });
    private final ScheduledExecutorService timer = Executors.newSingleThreadScheduledExecutor(r -> {
        Thread t = new Thread(r, "kiln-log-poll");
        t.setDaemon(true);
        return t;
    });

    /**
     * How long a followed log's new bytes wait for more to join them (see {@link LogStreamer}):
     * fewer, larger messages cost both ends less CPU while a build runs, and a longer wait saves
     * no more (docs/performance.md).
     */
    static final long LOG_LINGER_MILLIS = 40;

    private final LeaseKeeper lease;
    private final ActiveStreams activeStreams;
    private final dev.kiln.agent.serve.Serving serving;
    private final Problems problems;
    private final BootBuild bootBuild;
    private final ImdsRootOnly imdsRootOnly;
    private final dev.kiln.agent.schedule.ScheduleRunner schedules;

    private final ServiceSupervisor services;
    private final BootScript bootScript;

    public AgentGrpcService(AgentInfo info, BuildManager builds, VolumeService volumes, AgentSettings settings,
                            LeaseKeeper lease, ActiveStreams activeStreams, dev.kiln.agent.serve.Serving serving,
                            Problems problems, BootBuild bootBuild, ImdsRootOnly imdsRootOnly,
                            ServiceSupervisor services, BootScript bootScript,
                            dev.kiln.agent.schedule.ScheduleRunner schedules) {
        this.info = info;
        this.services = services;
        this.bootScript = bootScript;
        this.schedules = schedules;
        this.imdsRootOnly = imdsRootOnly;
        this.problems = problems;
        this.bootBuild = bootBuild;
        this.serving = serving;
        this.builds = builds;
        this.volumes = volumes;
        this.agentLog = AgentLogFile.of(settings.stateDir());
        this.lease = lease;
        this.activeStreams = activeStreams;
    }

    /** Releases the streaming threads. */
    @PreDestroy
    void close() {
        streams.shutdownNow();
        timer.shutdownNow();
    }

    @Override
    public void status(StatusRequest request, StreamObserver<StatusResponse> response) {
        StatusResponse.Builder status = StatusResponse.newBuilder();
        serving.server().ifPresent(ssh -> status.setSshPort(ssh.port())
                .setSshHostKeyFingerprint(ssh.hostKey().fingerprint())
                .setSshHostPublicKey(ssh.hostKey().publicKeyLine())
                .addAllSshForwardPorts(ssh.forwardPorts()));
        status
                .setAgentVersion(info.agentVersion())
                .setMode(info.identity().mode() == AgentMode.EC2 ? Mode.MODE_EC2 : Mode.MODE_LOCAL)
                .setInstanceId(info.identity().instanceId())
                .setRegion(info.identity().region())
                .setStartedAt(ProtoTime.timestamp(info.startedAt()))
                .setUptime(ProtoTime.duration(info.uptime()))
                .setState(lease.state() != LeaseKeeper.State.READY ? AgentState.AGENT_STATE_DRAINING
                        : problems.degraded() ? AgentState.AGENT_STATE_DEGRADED : AgentState.AGENT_STATE_READY)
                .addAllProblems(problems.configuration())
                .addAllProblems(imdsRootOnly.problems())
                .addAllProblems(volumes.bootErrors())
                .addAllProblems(bootBuild.errors())
                .addAllProblems(bootScript.problems())
                .addAllProblems(lease.upcomingEvents())
                .addAllProblems(schedules.problems())
                .addAllSchedules(schedules.messages())
                .setLease(leaseMessage())
                .addAllBusyReasons(lease.busyReasons())
                .setHostname(info.hostname())
                .setCurrentBuild(builds.current().map(BuildCodec::build).orElse(Build.getDefaultInstance()))
                .putAllLabels(services.labels())
                .addAllServices(services.statuses().stream().map(ServiceCodec::service).toList());
        bootScript.record().ifPresent(r -> status.setBootScript(BuildCodec.build(r)));
        response.onNext(status.build());
        response.onCompleted();
    }

    @Override
    public void listVolumes(ListVolumesRequest request, StreamObserver<ListVolumesResponse> response) {
        answer(response, () -> ListVolumesResponse.newBuilder()
                .addAllVolumes(volumes.list().stream().map(VolumeCodec::volume).toList())
                .addAllBootMountErrors(volumes.bootErrors()).build());
    }

    @Override
    public void mount(MountRequest request, StreamObserver<MountResponse> response) {
        answer(response, () -> VolumeCodec.response(volumes.mount(VolumeCodec.spec(request))));
    }

    @Override
    public void unmount(UnmountRequest request, StreamObserver<UnmountResponse> response) {
        answer(response, () -> {
            UnmountResult r = volumes.unmount(VolumeCodec.path(request.getMountPoint()),
                    request.hasGrace() ? VolumeCodec.duration(request.getGrace()) : null);
            return UnmountResponse.newBuilder().setWasMounted(r.wasMounted()).addAllStoppedProcesses(r.stopped()).build();
        });
    }

    @Override
    public void freeze(FreezeRequest request, StreamObserver<FreezeResponse> response) {
        answer(response, () -> FreezeResponse.newBuilder().setThawBy(ProtoTime.timestamp(volumes.freeze(
                VolumeCodec.path(request.getMountPoint()),
                request.hasLease() ? VolumeCodec.duration(request.getLease()) : null, request.getRequestId()))).build());
    }

    @Override
    public void thaw(ThawRequest request, StreamObserver<ThawResponse> response) {
        answer(response, () -> ThawResponse.newBuilder()
                .setWasFrozen(volumes.thaw(VolumeCodec.path(request.getMountPoint()))).build());
    }

    @Override
    public void setSchedule(SetScheduleRequest request, StreamObserver<Schedule> response) {
        answer(response, () -> {
            if (request.getOff()) {
                String role = request.getRole();
                dev.kiln.agent.schedule.ScheduleState gone = schedules.remove(role).orElseThrow(() ->
                        new dev.kiln.agent.volume.VolumeNotFoundException("no snapshot schedule for role '" + role + "'"
                                + " (scheduled: " + schedules.list().stream().map(s -> s.spec().role()).toList() + ")"));
                return dev.kiln.agent.schedule.ScheduleCodec.schedule(gone, "");
            }
            schedules.set(dev.kiln.agent.schedule.ScheduleCodec.spec(request));
            return schedules.messages().stream().filter(s -> s.getRole().equals(request.getRole())).findFirst()
                    .orElseThrow();
        });
    }

    @Override
    public void listSchedules(ListSchedulesRequest request, StreamObserver<ListSchedulesResponse> response) {
        answer(response, () -> ListSchedulesResponse.newBuilder().addAllSchedules(schedules.messages()).build());
    }

    @Override
    public void startBuild(StartBuildRequest request, StreamObserver<Build> response) {
        answer(response, () -> BuildCodec.build(builds.start(BuildCodec.spec(request))));
    }

    @Override
    public void getBuild(GetBuildRequest request, StreamObserver<Build> response) {
        answer(response, () -> BuildCodec.build(builds.get(request.getId())));
    }

    @Override
    public void listBuilds(ListBuildsRequest request, StreamObserver<ListBuildsResponse> response) {
        answer(response, () -> ListBuildsResponse.newBuilder()
                .addAllBuilds(builds.list(request.getLimit()).stream().map(BuildCodec::build).toList())
                .addAllBootBuildErrors(bootBuild.errors()).build());
    }

    @Override
    public void cancelBuild(CancelBuildRequest request, StreamObserver<Build> response) {
        answer(response, () -> BuildCodec.build(builds.cancel(request.getId(),
                java.time.Duration.ofSeconds(request.getGrace().getSeconds(), request.getGrace().getNanos()))));
    }

    @Override
    public void streamLogs(StreamLogsRequest request, StreamObserver<LogChunk> response) {
        try {
            if (request.getFromOffset() < 0) {
                throw new IllegalArgumentException("from_offset must not be negative");
            }
            LogSource source;
            Supplier<Build> end;
            if (request.getBuildId().equals("agent")) {
                source = new PolledFileSource(agentLog, dev.kiln.agent.logs.LogChannel.AGENT, timer,
                        lease::agentLogEnded);
                end = () -> null;
            } else if (request.getBuildId().isEmpty()) {
                throw new IllegalArgumentException("build_id must name a build, or be \"agent\" for the agent's own log,"
                        + " \"boot\" for the boot script's or \"service:NAME\" for a service's");
            } else if (request.getBuildId().equals("boot")) {
                String id = bootScript.record().map(BuildRecord::id).orElseThrow(() -> new ServiceNotFoundException(
                        bootScript.present() ? "the boot script has not run in this boot (kiln status says why)"
                                : "this instance has no boot script (kiln.boot-script is not set)"));
                source = builds.log(id);
                end = () -> BuildCodec.build(builds.get(id));
            } else if (request.getBuildId().startsWith("service:")) {
                RotatingLog log = services.log(request.getBuildId().substring("service:".length()));
                if (request.getFromOffset() < log.firstOffset()) {
                    throw new LogTruncatedException(request.getFromOffset(), log.firstOffset(), log.cap());
                }
                source = log;
                end = () -> null;
            } else {
                String id = request.getBuildId();
                source = builds.log(id);
                end = () -> BuildCodec.build(builds.get(id));
            }
            long size = source.size();
            if (request.getFromOffset() > size && (source.ended() || !request.getFollow())) {
                throw Status.OUT_OF_RANGE.withDescription("from_offset " + request.getFromOffset()
                        + " is beyond the end of the log (" + size + " bytes)").asRuntimeException();
            }
            boolean agentLogFollower = request.getBuildId().equals("agent") && request.getFollow();
            activeStreams.opened();
            if (agentLogFollower) {
                lease.agentLogFollowerOpened();
            }
            new LogStreamer((ServerCallStreamObserver<LogChunk>) response, source, request.getFromOffset(),
                    request.getFollow(), end, streams, (task, ms) -> timer.schedule(task, ms, TimeUnit.MILLISECONDS),
                    LOG_LINGER_MILLIS).onEnd(() -> {
                        activeStreams.closed();
                        if (agentLogFollower) {
                            lease.agentLogFollowerClosed();
                        }
                    }).start();
        } catch (LogTruncatedException e) {
            response.onError(Status.OUT_OF_RANGE.withDescription(e.getMessage()).asRuntimeException());
        } catch (RuntimeException e) {
            response.onError(GrpcStatus.of(e));
        }
    }

    /** Answers a unary call, translating failures once. */
    private static <T> void answer(StreamObserver<T> response, Call<T> call) {
        T value;
        try {
            value = call.get();
        } catch (Exception e) {
            response.onError(GrpcStatus.of(e));
            return;
        }
        response.onNext(value);
        response.onCompleted();
    }

    @FunctionalInterface
    private interface Call<T> {
        T get() throws Exception;
    }

    @Override
    public void extendLease(ExtendLeaseRequest request, StreamObserver<Lease> response) {
        answer(response, () -> {
            java.time.Duration by = request.hasBy()
                    ? java.time.Duration.ofSeconds(request.getBy().getSeconds(), request.getBy().getNanos()) : null;
            java.time.Instant until = request.hasUntil()
                    ? java.time.Instant.ofEpochSecond(request.getUntil().getSeconds(), request.getUntil().getNanos()) : null;
            lease.extend(by, until, request.getRequestId());
            return leaseMessage();
        });
    }

    @Override
    public void shutdown(ShutdownRequest request, StreamObserver<ShutdownResponse> response) {
        answer(response, () -> ShutdownResponse.newBuilder()
                .setDrainingSince(ProtoTime.timestamp(lease.shutdown(request.getReason()))).build());
    }

    private Lease leaseMessage() {
        Lease.Builder b = Lease.newBuilder().setMaxDeadline(ProtoTime.timestamp(lease.lease().maxDeadline()));
        lease.lease().deadline().ifPresentOrElse(d -> b.setDeadline(ProtoTime.timestamp(d)), () -> b.setForever(true));
        lease.lease().remaining().ifPresent(r -> b.setRemaining(ProtoTime.duration(r)));
        lease.endReason().ifPresent(r -> b.setEndReason(EndReason.valueOf("END_REASON_" + r.name())));
        return b.build();
    }

}
