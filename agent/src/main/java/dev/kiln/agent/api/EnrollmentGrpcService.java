package dev.kiln.agent.api;

import dev.kiln.agent.tls.ServerIdentity;
import dev.kiln.proto.agent.v1.CertificateRequestRequest;
import dev.kiln.proto.agent.v1.CertificateRequestResponse;
import dev.kiln.proto.agent.v1.EnrollmentGrpc;
import dev.kiln.proto.agent.v1.InstallCertificateRequest;
import dev.kiln.proto.agent.v1.InstallCertificateResponse;
import io.grpc.Status;
import io.grpc.stub.StreamObserver;
import jakarta.inject.Singleton;

/**
 * The gRPC adapter for the Enrollment service: {@link ServerIdentity} decides, this translates.
 */
@Singleton
public class EnrollmentGrpcService extends EnrollmentGrpc.EnrollmentImplBase {

    private final ServerIdentity identity;

    public EnrollmentGrpcService(ServerIdentity identity) {
        this.identity = identity;
    }

    @Override
    public void certificateRequest(CertificateRequestRequest request, StreamObserver<CertificateRequestResponse> response) {
        String csr;
        try {
            csr = identity.certificateRequest();
        } catch (IllegalStateException e) {
            response.onError(Status.FAILED_PRECONDITION.withDescription(e.getMessage()).asRuntimeException());
            return;
        }
        response.onNext(CertificateRequestResponse.newBuilder().setCsrPem(csr).setInstanceId(identity.instanceId()).build());
        response.onCompleted();
    }

    @Override
    public void installCertificate(InstallCertificateRequest request, StreamObserver<InstallCertificateResponse> response) {
        String fingerprint;
        try {
            fingerprint = identity.install(request.getCertificatePem());
        } catch (IllegalArgumentException e) {
            response.onError(Status.INVALID_ARGUMENT.withDescription(e.getMessage()).asRuntimeException());
            return;
        } catch (RuntimeException e) {
            response.onError(Status.INTERNAL.withDescription(e.getMessage()).asRuntimeException());
            return;
        }
        response.onNext(InstallCertificateResponse.newBuilder().setFingerprintSha256(fingerprint).build());
        response.onCompleted();
    }
}
