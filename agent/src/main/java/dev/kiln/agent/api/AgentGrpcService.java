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
import dev.kiln.agent.build.BuildCodec;
import dev.kiln.agent.build.BuildManager;
import dev.kiln.agent.config.AgentSettings;
import dev.kiln.agent.logs.AgentLogFile;
import dev.kiln.agent.logs.LogSource;
import dev.kiln.agent.logs.PolledFileSource;
import jakarta.annotation.PreDestroy;
import java.nio.file.Path;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
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

    private final dev.kiln.agent.serve.Serving serving;

    public AgentGrpcService(AgentInfo info, BuildManager builds, AgentSettings settings, dev.kiln.agent.serve.Serving serving) {
        this.info = info;
        this.serving = serving;
        this.builds = builds;
        this.agentLog = AgentLogFile.of(settings.stateDir());
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
                .setSshHostPublicKey(ssh.hostKey().publicKeyLine()));
        response.onNext(status
                .setAgentVersion(info.agentVersion())
                .setMode(info.identity().mode() == AgentMode.EC2 ? Mode.MODE_EC2 : Mode.MODE_LOCAL)
                .setInstanceId(info.identity().instanceId())
                .setRegion(info.identity().region())
                .setStartedAt(ProtoTime.timestamp(info.startedAt()))
                .setUptime(ProtoTime.duration(info.uptime()))
                .setState(AgentState.AGENT_STATE_READY)
                .setHostname(info.hostname())
                .setCurrentBuild(builds.current().map(BuildCodec::build).orElse(Build.getDefaultInstance()))
                .build());
        response.onCompleted();
    }

    @Override
    public void listVolumes(ListVolumesRequest request, StreamObserver<ListVolumesResponse> response) {
        notYet(response, "ListVolumes", "volumes");
    }

    @Override
    public void mount(MountRequest request, StreamObserver<MountResponse> response) {
        notYet(response, "Mount", "volumes");
    }

    @Override
    public void unmount(UnmountRequest request, StreamObserver<UnmountResponse> response) {
        notYet(response, "Unmount", "volumes");
    }

    @Override
    public void freeze(FreezeRequest request, StreamObserver<FreezeResponse> response) {
        notYet(response, "Freeze", "volumes");
    }

    @Override
    public void thaw(ThawRequest request, StreamObserver<ThawResponse> response) {
        notYet(response, "Thaw", "volumes");
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
                .addAllBuilds(builds.list(request.getLimit()).stream().map(BuildCodec::build).toList()).build());
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
                source = new PolledFileSource(agentLog, dev.kiln.agent.logs.OutputStream.AGENT, timer);
                end = () -> null;
            } else if (request.getBuildId().isEmpty()) {
                throw new IllegalArgumentException("build_id must name a build, or be \"agent\" for the agent's own log");
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
            new LogStreamer((ServerCallStreamObserver<LogChunk>) response, source, request.getFromOffset(),
                    request.getFollow(), end, streams).start();
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
        notYet(response, "ExtendLease", "lease");
    }

    @Override
    public void shutdown(ShutdownRequest request, StreamObserver<ShutdownResponse> response) {
        notYet(response, "Shutdown", "lease");
    }

    private void notYet(StreamObserver<?> response, String rpc, String feature) {
        response.onError(Status.UNIMPLEMENTED
                .withDescription(rpc + " is part of the kiln.agent.v1 contract but kiln-agent "
                        + info.agentVersion() + " does not implement the " + feature + " feature yet")
                .asRuntimeException());
    }
}
