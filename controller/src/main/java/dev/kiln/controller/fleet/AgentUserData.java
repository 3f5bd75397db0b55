package dev.kiln.controller.fleet;

import dev.kiln.controller.pki.FleetCa;
import dev.kiln.controller.pki.IssuedCertificate;
import dev.kiln.controller.pki.Pem;

import java.time.Duration;

/**
 * The agent's settings as `kiln launch` writes them into user data: the same shape as
 * /etc/kiln/agent.yml, with the TLS material inline (the instance's own certificate and key,
 * issued for this launch, and the fleet CA).
 */
public final class AgentUserData {

    private AgentUserData() {
    }

    public static String yaml(IssuedCertificate cert, FleetCa ca, int grpcPort, Duration ttl, Duration maxLifetime) {
        StringBuilder b = new StringBuilder("# kiln-agent settings, written by `kiln launch`\nkiln:\n  mode: ec2\n");
        b.append("  grpc:\n    host: 0.0.0.0\n    port: ").append(grpcPort).append('\n');
        b.append("  tls:\n");
        b.append("    cert: |\n").append(indent(cert.certificatePem()));
        b.append("    key: |\n").append(indent(cert.privateKeyPem()));
        b.append("    ca: |\n").append(indent(Pem.encode(ca.certificate())));
        b.append("  lease:\n    ttl: ").append(ttl.toSeconds()).append("s\n");
        b.append("    max-lifetime: ").append(maxLifetime.toSeconds()).append("s\n");
        return b.toString();
    }

    private static String indent(String pem) {
        StringBuilder b = new StringBuilder();
        pem.lines().forEach(l -> b.append("      ").append(l).append('\n'));
        return b.toString();
    }
}
