package dev.kiln.controller.client;

import dev.kiln.controller.ExitCodes;
import dev.kiln.controller.KilnException;
import dev.kiln.controller.pki.FleetCa;
import dev.kiln.controller.pki.Pem;
import dev.kiln.proto.agent.v1.CertificateRequestRequest;
import dev.kiln.proto.agent.v1.CertificateRequestResponse;
import dev.kiln.proto.agent.v1.EnrollmentGrpc;
import dev.kiln.proto.agent.v1.InstallCertificateRequest;
import dev.kiln.tls.BootstrapCertificate;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import org.bouncycastle.asn1.x500.style.BCStyle;
import org.bouncycastle.asn1.x500.style.IETFUtils;
import org.bouncycastle.openssl.PEMParser;
import org.bouncycastle.operator.OperatorCreationException;
import org.bouncycastle.operator.jcajce.JcaContentVerifierProviderBuilder;
import org.bouncycastle.pkcs.PKCS10CertificationRequest;
import org.bouncycastle.pkcs.PKCSException;
import org.bouncycastle.pkcs.jcajce.JcaPKCS10CertificationRequest;

import java.io.IOException;
import java.io.StringReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.MessageDigest;
import java.security.PublicKey;
import java.security.cert.X509Certificate;
import java.security.interfaces.ECPublicKey;
import java.time.Duration;
import java.time.Instant;
import java.util.HexFormat;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;

/**
 * The controller's side of enrollment (docs/security.md, "No long-lived secret in user data").
 * An agent launched with a bootstrap certificate is asked for a certificate request for its own
 * key; the request is checked (signed by that key, for the instance launched, not the bootstrap
 * key), the fleet CA issues a certificate for it with the names the controller chose, and the
 * agent installs it. The enrolled instance is recorded in the controller's state directory, and
 * an instance recorded there that presents a bootstrap certificate again is refused: its user
 * data is being replayed.
 *
 * @param ca       the fleet CA
 * @param tls      the controller's TLS material
 * @param enrolled where enrolled instances are recorded ({@code <state-dir>/enrolled})
 * @param timeout  each call's deadline
 */
public record Enroller(FleetCa ca, ClientTls tls, Path enrolled, Duration timeout) {

    /** What the agent names itself in its request: the subject of its enrolled certificate. */
    public static String commonName(String instanceId) {
        return "kiln-agent " + instanceId;
    }

    /**
     * What {@link #enroll} did.
     *
     * @param enrolledNow true when the agent presented its bootstrap certificate and now serves the enrolled one
     * @param presented   the certificate the agent presented on the enrollment connection
     * @param issued      the certificate issued, or null when the agent had enrolled before
     */
    public record Result(boolean enrolledNow, X509Certificate presented, X509Certificate issued) {
    }

    /** The longest an enrolled certificate lasts when the agent's own maximum lifetime sets its end. */
    public static final Duration LONGEST = Duration.ofDays(30);

    /**
     * Enrolls the agent at {@code endpoint} if it still presents a bootstrap certificate, for as
     * long as the agent's lease may last (its max deadline from Status) and a day, at most
     * {@link #LONGEST} and a day: for commands that did not launch the instance and so do not
     * know its maximum lifetime.
     */
    public Result enroll(AgentEndpoint endpoint, String instanceId, List<String> dnsNames, List<String> ips) {
        AtomicReference<X509Certificate> presented = new AtomicReference<>();
        ManagedChannel channel = AgentClient.channel(endpoint, tls.enrollmentContext(presented::set));
        Instant maxDeadline;
        try (AgentClient client = new AgentClient(endpoint, channel, timeout)) {
            var lease = client.status().getLease();
            Instant cap = Instant.now().plus(LONGEST);
            maxDeadline = lease.getForever() || lease.getMaxDeadline().getSeconds() == 0 ? cap
                    : Instant.ofEpochSecond(lease.getMaxDeadline().getSeconds());
            maxDeadline = maxDeadline.isAfter(cap) ? cap : maxDeadline;
        }
        return enroll(endpoint, instanceId, dnsNames, ips, maxDeadline.plus(Duration.ofDays(1)));
    }

    /**
     * Enrolls the agent at {@code endpoint} if it still presents a bootstrap certificate.
     *
     * @param instanceId the instance launched there (the request must name it)
     * @param dnsNames   the enrolled certificate's DNS names (those of the bootstrap certificate)
     * @param ips        its IP addresses
     * @param notAfter   the end of its validity: the instance's maximum lifetime, and a margin
     * @throws KilnException when the agent cannot be reached, its request does not match, or it
     *                       replays a bootstrap certificate after its enrollment
     */
    public Result enroll(AgentEndpoint endpoint, String instanceId, List<String> dnsNames, List<String> ips,
                         Instant notAfter) {
        AtomicReference<X509Certificate> presented = new AtomicReference<>();
        ManagedChannel channel = AgentClient.channel(endpoint, tls.enrollmentContext(presented::set));
        try (AgentClient client = new AgentClient(endpoint, channel, timeout)) {
            EnrollmentGrpc.EnrollmentBlockingStub stub = EnrollmentGrpc.newBlockingStub(channel);
            CertificateRequestResponse request;
            try {
                request = stub.withDeadlineAfter(timeout.toMillis(), TimeUnit.MILLISECONDS)
                        .certificateRequest(CertificateRequestRequest.getDefaultInstance());
            } catch (StatusRuntimeException e) {
                X509Certificate shown = presented.get();
                if (e.getStatus().getCode() == Status.Code.FAILED_PRECONDITION && shown != null
                        && !BootstrapCertificate.is(shown)) {
                    return new Result(false, shown, null); // enrolled before, by this or another controller
                }
                throw client.translate(e);
            }
            X509Certificate bootstrap = presented.get();
            if (bootstrap == null || !BootstrapCertificate.is(bootstrap)) {
                throw refused(instanceId, "offers to enroll but does not present a bootstrap certificate");
            }
            Path record = enrolled.resolve(instanceId);
            if (Files.exists(record)) {
                throw refused(instanceId, "presents a bootstrap certificate, but it enrolled its own key already ("
                        + record + "); whoever answers at " + endpoint + " replays its user data");
            }
            PublicKey key = checkedKey(request, instanceId, bootstrap);
            Instant now = Instant.now();
            X509Certificate issued = ca.issueServerFor(key, commonName(instanceId), dnsNames, ips,
                    now.minus(Duration.ofMinutes(5)), notAfter);
            try {
                stub.withDeadlineAfter(timeout.toMillis(), TimeUnit.MILLISECONDS).installCertificate(
                        InstallCertificateRequest.newBuilder().setCertificatePem(Pem.encode(issued)).build());
            } catch (StatusRuntimeException e) {
                throw client.translate(e);
            }
            remember(record, issued);
            return new Result(true, bootstrap, issued);
        }
    }

    /** The public key of the agent's request, once the request passes every check. */
    static PublicKey checkedKey(CertificateRequestResponse response, String instanceId, X509Certificate bootstrap) {
        try (PEMParser parser = new PEMParser(new StringReader(response.getCsrPem()))) {
            if (!(parser.readObject() instanceof PKCS10CertificationRequest parsed)) {
                throw refused(instanceId, "sent no PKCS#10 certificate request");
            }
            JcaPKCS10CertificationRequest csr = new JcaPKCS10CertificationRequest(parsed);
            PublicKey key = csr.getPublicKey();
            if (!csr.isSignatureValid(new JcaContentVerifierProviderBuilder().build(key))) {
                throw refused(instanceId, "sent a certificate request not signed by its key");
            }
            var cn = csr.getSubject().getRDNs(BCStyle.CN);
            String name = cn.length == 1 ? IETFUtils.valueToString(cn[0].getFirst().getValue()) : "";
            if (!name.equals(commonName(instanceId)) || !response.getInstanceId().equals(instanceId)) {
                throw refused(instanceId, "asks for a certificate for '" + name + "' (" + response.getInstanceId()
                        + "), not for the instance launched");
            }
            if (!(key instanceof ECPublicKey)) {
                throw refused(instanceId, "asks for a certificate for a " + key.getAlgorithm() + " key, not EC P-256");
            }
            if (key.equals(bootstrap.getPublicKey())) {
                throw refused(instanceId, "asks for a certificate for the bootstrap key from its user data");
            }
            return key;
        } catch (IOException | GeneralSecurityException | OperatorCreationException | PKCSException e) {
            throw refused(instanceId, "sent a certificate request that cannot be read: " + e.getMessage());
        }
    }

    private static void remember(Path record, X509Certificate issued) {
        try {
            Files.createDirectories(record.getParent());
            String fingerprint = HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(issued.getEncoded()));
            Files.writeString(record, fingerprint + "\n", StandardCharsets.US_ASCII);
        } catch (IOException | GeneralSecurityException e) {
            throw new KilnException(ExitCodes.FAILURE, "enrolled, but cannot record it in " + record + ": " + e.getMessage(), e);
        }
    }

    private static KilnException refused(String instanceId, String why) {
        return new KilnException(ExitCodes.REFUSED, "refusing to enroll " + instanceId + ": its agent " + why);
    }
}
