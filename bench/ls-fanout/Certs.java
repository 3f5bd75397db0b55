import dev.kiln.controller.config.CliEnvironment;
import dev.kiln.controller.config.KilnPaths;
import dev.kiln.controller.pki.FleetCa;
import dev.kiln.controller.pki.IssuedCertificate;
import dev.kiln.controller.pki.Pem;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.List;

/**
 * A server certificate from this controller's fleet CA (`kiln init`) for each loopback address
 * given, as an EC2 agent's enrolled one is: its own key, the name agent-A-B-C-D.kiln.internal
 * (what a record's cert-name names and the CLI verifies) and the address itself.
 * Writes DIR/ADDRESS/{agent.crt,agent.key,fleet-ca.crt}.
 * Usage: java -cp kiln.jar:DIR Certs DIR ADDRESS...
 */
public class Certs {
    public static void main(String[] args) throws Exception {
        KilnPaths paths = KilnPaths.from(CliEnvironment.system());
        FleetCa ca = FleetCa.load(paths.caCert(), paths.caKey());
        Instant now = Instant.now();
        for (int i = 1; i < args.length; i++) {
            String address = args[i];
            Path dir = Files.createDirectories(Path.of(args[0], address));
            IssuedCertificate cert = ca.issueServer("kiln-agent " + address, List.of(name(address)), List.of(address),
                    now.minus(Duration.ofMinutes(5)), now.plus(Duration.ofDays(1)));
            Pem.writePublic(dir.resolve("agent.crt"), cert.certificatePem());
            Pem.writePrivate(dir.resolve("agent.key"), cert.privateKeyPem());
            Pem.writePublic(dir.resolve("fleet-ca.crt"), Pem.encode(ca.certificate()));
        }
    }

    /** The certificate name of the agent at this address. */
    static String name(String address) {
        return "agent-" + address.replace('.', '-') + ".kiln.internal";
    }
}
