package dev.kiln.controller.client;

import dev.kiln.controller.ExitCodes;
import dev.kiln.controller.KilnException;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.netty.handler.ssl.SslHandshakeTimeoutException;

import javax.net.ssl.SSLException;
import java.net.ConnectException;
import java.security.cert.CertificateException;
import java.time.Duration;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** Translates gRPC failures into one-line messages and exit codes, in one place. */
public final class GrpcErrors {

    private GrpcErrors() {
    }

    /** As {@link #translate(StatusRuntimeException, AgentEndpoint, Duration)}, for a call whose deadline is not known here. */
    public static KilnException translate(StatusRuntimeException e, AgentEndpoint target) {
        return translate(e, target, null);
    }

    /**
     * A failed call to {@code target} as a message and an exit code.
     *
     * @param deadline the call's deadline, named when it ran out; null when unknown
     */
    public static KilnException translate(StatusRuntimeException e, AgentEndpoint target, Duration deadline) {
        Status status = e.getStatus();
        String description = status.getDescription() == null ? "" : status.getDescription();
        return switch (status.getCode()) {
            case UNAVAILABLE -> unavailable(e, target, description);
            // gRPC's own description (buffered nanos, name resolution delay) says nothing a user can act on.
            case DEADLINE_EXCEEDED -> new KilnException(ExitCodes.UNREACHABLE, "no answer from " + target + " in "
                    + (deadline == null ? "time" : format(deadline)) + "; is kiln-agent running there, and not stuck?", e);
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

    /** A deadline as it is written on the command line: 10s, 5m, 2h, 500ms. */
    static String format(Duration d) {
        long ms = d.toMillis();
        if (ms % 1000 != 0) {
            return ms + "ms";
        }
        long s = ms / 1000;
        return s > 0 && s % 3600 == 0 ? s / 3600 + "h" : s > 0 && s % 60 == 0 ? s / 60 + "m" : s + "s";
    }

    private static KilnException unavailable(StatusRuntimeException e, AgentEndpoint target, String description) {
        for (Throwable t = e.getCause(); t != null; t = t.getCause()) {
            if (t instanceof SslHandshakeTimeoutException) {
                // A listener that accepts and never speaks: no answer, as when the call's deadline runs out first.
                return new KilnException(ExitCodes.UNREACHABLE, "no answer from " + target + " in " + handshakeTime(t)
                        + "; is kiln-agent running there, and not stuck? (it accepted the connection but did not"
                        + " finish the TLS handshake)", e);
            }
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

    /** How long the TLS handshake was given, as Netty's timeout says it ("handshake timed out after 10000ms"). */
    private static String handshakeTime(Throwable timeout) {
        Matcher m = Pattern.compile("after (\\d+) ?ms").matcher(String.valueOf(timeout.getMessage()));
        return m.find() ? format(Duration.ofMillis(Long.parseLong(m.group(1)))) : "time";
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
