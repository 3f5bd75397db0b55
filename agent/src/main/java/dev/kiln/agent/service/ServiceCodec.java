package dev.kiln.agent.service;

import com.google.protobuf.Timestamp;
import dev.kiln.proto.agent.v1.Service;

/** Converts a service's status to the contract's message. */
public final class ServiceCodec {

    private ServiceCodec() {
    }

    public static Service service(ServiceStatus s) {
        Service.Builder b = Service.newBuilder()
                .setName(s.settings().name())
                .setPort(s.settings().port())
                .setPath(s.settings().path())
                .setCommand(s.settings().command() == null ? "" : s.settings().command())
                .setState(dev.kiln.proto.agent.v1.ServiceState.valueOf("SERVICE_STATE_" + s.state().name()))
                .setPid((int) s.pid())
                .setRestarts(s.restarts())
                .setPortOpen(s.portOpen())
                .setDetail(s.detail())
                .setKeepsAlive(s.settings().keepsAlive())
                .setLogSizeBytes(s.logSize());
        if (s.since() != null) {
            b.setSince(Timestamp.newBuilder().setSeconds(s.since().getEpochSecond()).setNanos(s.since().getNano()));
        }
        return b.build();
    }
}
