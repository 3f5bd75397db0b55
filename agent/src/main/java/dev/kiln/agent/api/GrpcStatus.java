package dev.kiln.agent.api;

import dev.kiln.agent.build.BuildConflictException;
import dev.kiln.agent.build.BuildNotFoundException;
import dev.kiln.agent.build.WorkTreeReadOnlyException;
import dev.kiln.agent.volume.VolumeNotFoundException;
import dev.kiln.agent.volume.VolumeRefusedException;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** The one place where domain exceptions become gRPC status codes with actionable descriptions. */
final class GrpcStatus {

    private static final Logger LOG = LoggerFactory.getLogger(GrpcStatus.class);

    private GrpcStatus() {
    }

    static StatusRuntimeException of(Throwable e) {
        if (e instanceof StatusRuntimeException s) {
            return s;
        }
        String message = e.getMessage() == null ? e.toString() : e.getMessage();
        Status status;
        if (e instanceof VolumeRefusedException || e instanceof VolumeNotFoundException) {
            LOG.warn("refused: {}", message); // volume refusals matter to whoever reads the agent log later
        }
        if (e instanceof BuildNotFoundException || e instanceof VolumeNotFoundException
                || e instanceof dev.kiln.agent.service.ServiceNotFoundException) {
            status = Status.NOT_FOUND;
        } else if (e instanceof BuildConflictException || e instanceof WorkTreeReadOnlyException
                || e instanceof VolumeRefusedException
                || e instanceof dev.kiln.agent.lease.LeaseException) {
            status = Status.FAILED_PRECONDITION;
        } else if (e instanceof IllegalArgumentException) {
            status = Status.INVALID_ARGUMENT;
        } else if (e instanceof IllegalStateException) {
            status = Status.UNAVAILABLE;
        } else {
            LOG.error("request failed", e);
            status = Status.INTERNAL;
            message = message + " (see the agent log)";
        }
        return status.withDescription(message).asRuntimeException();
    }
}
