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
import io.grpc.stub.StreamObserver;
import jakarta.inject.Singleton;

/**
 * The gRPC adapter for the Agent service: translates requests to the domain classes and their
 * answers and errors to protobuf and gRPC status. No decisions are made here.
 */
@Singleton
public class AgentGrpcService extends AgentGrpc.AgentImplBase {

    private final AgentInfo info;

    public AgentGrpcService(AgentInfo info) {
        this.info = info;
    }

    @Override
    public void status(StatusRequest request, StreamObserver<StatusResponse> response) {
        response.onNext(StatusResponse.newBuilder()
                .setAgentVersion(info.agentVersion())
                .setMode(info.identity().mode() == AgentMode.EC2 ? Mode.MODE_EC2 : Mode.MODE_LOCAL)
                .setInstanceId(info.identity().instanceId())
                .setRegion(info.identity().region())
                .setStartedAt(ProtoTime.timestamp(info.startedAt()))
                .setUptime(ProtoTime.duration(info.uptime()))
                .setState(AgentState.AGENT_STATE_READY)
                .setHostname(info.hostname())
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
        notYet(response, "StartBuild", "builds");
    }

    @Override
    public void getBuild(GetBuildRequest request, StreamObserver<Build> response) {
        notYet(response, "GetBuild", "builds");
    }

    @Override
    public void listBuilds(ListBuildsRequest request, StreamObserver<ListBuildsResponse> response) {
        notYet(response, "ListBuilds", "builds");
    }

    @Override
    public void cancelBuild(CancelBuildRequest request, StreamObserver<Build> response) {
        notYet(response, "CancelBuild", "builds");
    }

    @Override
    public void streamLogs(StreamLogsRequest request, StreamObserver<LogChunk> response) {
        notYet(response, "StreamLogs", "logs");
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
