package dev.kiln.controller.client;

import dev.kiln.controller.ExitCodes;
import dev.kiln.controller.KilnException;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;

import javax.net.ssl.SSLException;
import java.net.ConnectException;
import java.security.cert.CertificateException;

/** Translates gRPC failures into one-line messages and exit codes, in one place. */
public final class GrpcErrors {

    private GrpcErrors() {
    }

    public static KilnException translate(StatusRuntimeException e, AgentEndpoint target) {
        Status status = e.getStatus();
        String description = status.getDescription() == null ? "" : status.getDescription();
        return switch (status.getCode()) {
            case UNAVAILABLE -> unavailable(e, target, description);
            case DEADLINE_EXCEEDED -> new KilnException(ExitCodes.UNREACHABLE,
                    "agent " + target + " did not answer in time (" + description + ")", e);
            case UNIMPLEMENTED -> new KilnException(ExitCodes.UNSUPPORTED, description.isEmpty()
                    ? "agent " + target + " does not support this request; upgrade kiln-agent" : description, e);
            case NOT_FOUND -> new KilnException(ExitCodes.NOT_FOUND, description, e);
            case ALREADY_EXISTS -> new KilnException(ExitCodes.EXISTS, description, e);
            case INVALID_ARGUMENT, FAILED_PRECONDITION, PERMISSION_DENIED, OUT_OF_RANGE, RESOURCE_EXHAUSTED ->
                    new KilnException(ExitCodes.REFUSED, "agent " + target + " refused: " + description, e);
            default -> new KilnException(ExitCodes.FAILURE,
                    "agent " + target + " failed: " + status.getCode() + (description.isEmpty() ? "" : ": " + description), e);
        };
    }

    private static KilnException unavailable(StatusRuntimeException e, AgentEndpoint target, String description) {
        for (Throwable t = e.getCause(); t != null; t = t.getCause()) {
            if (t instanceof SSLException) {
                return new KilnException(ExitCodes.UNREACHABLE, "TLS handshake with agent " + target + " failed ("
                        + tlsReason(t) + "); is its certificate issued by this controller's fleet CA, and valid for '"
                        + (target.serverName() == null ? target.host() : target.serverName()) + "'?", e);
            }
            if (t instanceof ConnectException) {
                return new KilnException(ExitCodes.UNREACHABLE, "cannot connect to agent " + target
                        + ": connection refused (is it running? `kiln up --local` starts a local agent)", e);
            }
        }
        return new KilnException(ExitCodes.UNREACHABLE, "agent " + target + " is unreachable"
                + (description.isEmpty() ? "" : ": " + description), e);
    }

    /**
     * Why a handshake failed: the certificate check's own words where there is one (OpenSSL's
     * engine reports a refused certificate as "General OpenSslEngine problem", with the trust
     * manager's reason as its cause; the JDK's puts the reason in its own message too).
     */
    private static String tlsReason(Throwable ssl) {
        for (Throwable t = ssl; t != null; t = t.getCause()) {
            if (t instanceof CertificateException && t.getMessage() != null) {
                return t.getMessage();
            }
        }
        return ssl.getMessage();
    }
}
