package dev.kiln.controller.cli;

import dev.kiln.controller.ExitCodes;
import dev.kiln.controller.KilnException;
import dev.kiln.controller.fleet.Ec2Fleet;
import dev.kiln.controller.pki.FleetCa;
import dev.kiln.controller.pki.IssuedCertificate;
import dev.kiln.controller.pki.Pem;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.time.Instant;
import java.util.HexFormat;
import java.util.List;
import java.util.UUID;

/**
 * What a launch sends that is random or time-based (the agent's certificate name, its
 * bootstrap certificate and key, the start the lease counts from), kept per client token: EC2 answers a
 * retried request whose parameters differ under a used token with IdempotentParameterMismatch,
 * so a retried {@code kiln launch --client-token T} must send exactly what the first attempt
 * sent. Without a token, a launch is never retried and nothing is kept.
 *
 * @param certName  the name in the agent's certificate (and its kiln:cert-name tag)
 * @param cert      the agent's bootstrap certificate and key, carried in user data
 * @param startedAt when the first attempt started; the lease (kiln:expires-at) counts from it
 */
record LaunchRecord(String certName, IssuedCertificate cert, Instant startedAt) {

    /**
     * A new record: a fresh certificate name, bootstrap certificate (valid for the launch's wait,
     * see {@link LaunchCommand#bootstrapCertificate}) and start.
     */
    static LaunchRecord fresh(FleetCa ca, Duration wait, Instant now) {
        String certName = "agent-" + HexFormat.of().formatHex(UUID.randomUUID().toString().getBytes(), 0, 6) + ".kiln.internal";
        IssuedCertificate cert = LaunchCommand.bootstrapCertificate(ca, certName, wait, now);
        return new LaunchRecord(certName, cert, now.truncatedTo(java.time.temporal.ChronoUnit.SECONDS));
    }

    /** Refuses a client token EC2 would refuse: longer than 64 characters or not printable ASCII. */
    static String checkToken(String token) {
        if (token.isEmpty() || token.length() > Ec2Fleet.MAX_CLIENT_TOKEN || !token.matches("[\\x21-\\x7e]+")) {
            throw new KilnException(ExitCodes.USAGE, "--client-token must be 1-" + Ec2Fleet.MAX_CLIENT_TOKEN
                    + " printable ASCII characters (EC2's limit), not '" + token + "'");
        }
        return token;
    }

    /** The record kept for this token under {@code dir}, or a fresh one, kept there before it is used. */
    static LaunchRecord forToken(Path dir, String token, FleetCa ca, Duration wait, Instant now) {
        Path d = dir.resolve(hash(token));
        try {
            if (Files.exists(d.resolve("started-at"))) {
                return new LaunchRecord(Files.readString(d.resolve("cert-name")).strip(),
                        new IssuedCertificate(Pem.readCertificate(d.resolve("agent.crt")), Pem.readPrivateKey(d.resolve("agent.key"))),
                        Instant.parse(Files.readString(d.resolve("started-at")).strip()));
            }
            LaunchRecord r = fresh(ca, wait, now);
            Pem.writePrivate(d.resolve("agent.key"), r.cert().privateKeyPem());
            Pem.writePublic(d.resolve("agent.crt"), r.cert().certificatePem());
            Files.writeString(d.resolve("cert-name"), r.certName() + "\n");
            Files.writeString(d.resolve("started-at"), r.startedAt() + "\n"); // last: marks the record complete
            return r;
        } catch (IOException | RuntimeException e) {
            throw new KilnException(ExitCodes.CONFIG, "cannot keep or read the launch record for client token " + token + " in "
                    + d + " (" + e.getMessage() + ")", e);
        }
    }

    private static String hash(String token) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(token.getBytes(StandardCharsets.UTF_8)))
                    .substring(0, 32);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
