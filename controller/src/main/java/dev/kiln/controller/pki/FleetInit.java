package dev.kiln.controller.pki;

import dev.kiln.controller.ExitCodes;
import dev.kiln.controller.KilnException;
import dev.kiln.controller.config.KilnPaths;
import dev.kiln.controller.ssh.SshKeyPair;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;

/**
 * {@code kiln init}: creates the fleet CA, the controller's client certificate and an ed25519 SSH
 * key under the controller's config directory. Never replaces an existing CA unless forced:
 * every agent launched so far trusts that CA and no other.
 */
public final class FleetInit {

    /** How long the fleet CA is valid. */
    public static final Duration CA_VALIDITY = Duration.ofDays(3650);
    /** How long the controller's client certificate is valid. */
    public static final Duration CLIENT_VALIDITY = Duration.ofDays(825);

    /**
     * One file init wrote or kept.
     *
     * @param path   where
     * @param what   a description
     * @param action "created", "replaced" or "kept"
     */
    public record Entry(Path path, String what, String action) {
    }

    private final KilnPaths paths;
    private final Clock clock;

    public FleetInit(KilnPaths paths, Clock clock) {
        this.paths = paths;
        this.clock = clock;
    }

    /** True when the fleet CA and the controller's certificate exist. */
    public boolean initialised() {
        return Files.exists(paths.caCert()) && Files.exists(paths.caKey())
                && Files.exists(paths.clientCert()) && Files.exists(paths.clientKey());
    }

    /**
     * Creates what is missing.
     *
     * @param force    replace an existing CA (and with it the controller certificate and SSH key)
     * @param identity who this controller is, e.g. "alice@laptop", used in names and comments
     */
    public List<Entry> run(boolean force, String identity) {
        boolean caExists = Files.exists(paths.caCert()) || Files.exists(paths.caKey());
        if (caExists && !force) {
            throw new KilnException(ExitCodes.EXISTS, "a fleet CA already exists in " + paths.configDir()
                    + "; agents launched with it trust it and no other. Nothing was changed. "
                    + "Re-run with --force to replace it (then re-launch or re-certify every agent)");
        }
        List<Entry> entries = new ArrayList<>();
        try {
            Files.createDirectories(paths.configDir());
            Files.setPosixFilePermissions(paths.configDir(), PosixFilePermissions.fromString("rwx------"));
            Instant now = clock.instant();
            String action = caExists ? "replaced" : "created";

            FleetCa ca = FleetCa.create("kiln fleet CA (" + identity + ")", now.minus(Duration.ofMinutes(5)),
                    now.plus(CA_VALIDITY));
            Pem.writePrivate(paths.caKey(), Pem.encode(ca.privateKey()));
            Pem.writePublic(paths.caCert(), Pem.encode(ca.certificate()));
            entries.add(new Entry(paths.caCert(), "fleet CA certificate", action));
            entries.add(new Entry(paths.caKey(), "fleet CA private key", action));

            IssuedCertificate client = ca.issueClient("kiln controller " + identity,
                    now.minus(Duration.ofMinutes(5)), now.plus(CLIENT_VALIDITY));
            Pem.writePrivate(paths.clientKey(), client.privateKeyPem());
            Pem.writePublic(paths.clientCert(), client.certificatePem());
            entries.add(new Entry(paths.clientCert(), "controller client certificate", action));
            entries.add(new Entry(paths.clientKey(), "controller client key", action));

            if (Files.exists(paths.sshKey()) && !force) {
                entries.add(new Entry(paths.sshKey(), "SSH key (ed25519)", "kept"));
            } else {
                String sshAction = Files.exists(paths.sshKey()) ? "replaced" : "created";
                SshKeyPair ssh = SshKeyPair.generate("kiln " + identity);
                Pem.writePrivate(paths.sshKey(), ssh.privateKeyPem());
                Pem.writePublic(paths.sshPublicKey(), ssh.publicKeyLine());
                entries.add(new Entry(paths.sshKey(), "SSH key (ed25519)", sshAction));
                entries.add(new Entry(paths.sshPublicKey(), "SSH public key", sshAction));
            }
        } catch (IOException e) {
            throw new KilnException(ExitCodes.FAILURE, "cannot write to " + paths.configDir() + ": " + e.getMessage(), e);
        }
        return entries;
    }

    /** Loads the fleet CA, or explains how to create one. */
    public FleetCa loadCa() {
        if (!Files.exists(paths.caCert()) || !Files.exists(paths.caKey())) {
            throw notInitialised(paths);
        }
        try {
            return FleetCa.load(paths.caCert(), paths.caKey());
        } catch (IOException e) {
            throw new KilnException(ExitCodes.CONFIG, "cannot read the fleet CA in " + paths.configDir() + ": "
                    + e.getMessage(), e);
        }
    }

    /** The error for a controller that has not run {@code kiln init}. */
    public static KilnException notInitialised(KilnPaths paths) {
        return new KilnException(ExitCodes.CONFIG, "no fleet CA in " + paths.configDir()
                + "; run `kiln init` first");
    }

    /** The identity string for this user and host. */
    public static String defaultIdentity() {
        String user = System.getProperty("user.name", "user");
        String host;
        try {
            host = java.net.InetAddress.getLocalHost().getHostName();
        } catch (IOException e) {
            host = "localhost";
        }
        return user + "@" + host;
    }

}
