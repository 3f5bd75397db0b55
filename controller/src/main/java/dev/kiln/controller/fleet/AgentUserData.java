package dev.kiln.controller.fleet;

import dev.kiln.controller.pki.FleetCa;
import dev.kiln.controller.pki.IssuedCertificate;
import dev.kiln.controller.pki.Pem;

import java.time.Duration;
import java.util.List;
import java.util.Map;

/**
 * The agent's settings as `kiln launch` writes them into user data: the same shape as
 * /etc/kiln/agent.yml, with the TLS material inline (the instance's own certificate and key,
 * issued for this launch, and the fleet CA).
 */
public final class AgentUserData {

    private AgentUserData() {
    }

    /**
     * A build the agent starts once per boot, after its boot mounts ({@code kiln.boot-build}).
     *
     * @param workTree where it runs
     * @param profiles tup profiles (empty: all), when {@code command} is empty
     * @param command  argv of a command build instead of tup, or empty
     */
    public record BootBuild(String workTree, List<String> profiles, List<String> command) {
    }

    public static String yaml(IssuedCertificate cert, FleetCa ca, int grpcPort, Duration ttl, Duration maxLifetime) {
        return yaml(cert, ca, grpcPort, ttl, maxLifetime, null, null, null);
    }

    /**
     * The settings with the instance's layout (boot mounts and what SSH serves), the owner's SSH
     * public key and an optional boot build; null leaves each out.
     */
    public static String yaml(IssuedCertificate cert, FleetCa ca, int grpcPort, Duration ttl, Duration maxLifetime,
                              InstanceLayout layout, String ownerKey, BootBuild bootBuild) {
        StringBuilder b = new StringBuilder("# kiln-agent settings, written by `kiln launch`\nkiln:\n  mode: ec2\n");
        b.append("  grpc:\n    host: 0.0.0.0\n    port: ").append(grpcPort).append('\n');
        b.append("  tls:\n");
        b.append("    cert: |\n").append(indent(cert.certificatePem()));
        b.append("    key: |\n").append(indent(cert.privateKeyPem()));
        b.append("    ca: |\n").append(indent(Pem.encode(ca.certificate())));
        b.append(sections(ttl, maxLifetime, layout, ownerKey == null ? null : "|\n      " + ownerKey.strip(), null, null, bootBuild));
        return b.toString();
    }

    /**
     * The sections after {@code kiln.tls}: lease, boot mounts, SSH and boot build.
     *
     * @param ownerKeys  the value of kiln.ssh.owner-keys as YAML (a block or a quoted path), or null
     * @param readerKeys the same for kiln.ssh.reader-keys, or null
     * @param sshHostPort extra kiln.ssh lines (host, port) as YAML, or null
     */
    public static String sections(Duration ttl, Duration maxLifetime, InstanceLayout layout, String ownerKeys,
                                  String readerKeys, String sshHostPort, BootBuild bootBuild) {
        StringBuilder b = new StringBuilder();
        b.append("  lease:\n    ttl: ").append(ttl.toSeconds()).append("s\n");
        b.append("    max-lifetime: ").append(maxLifetime.toSeconds()).append("s\n");
        if (layout != null && !layout.mounts().isEmpty()) {
            b.append("  volumes:\n    mounts:\n");
            for (InstanceLayout.Mount m : layout.mounts()) {
                if (m.overlay()) {
                    b.append("      - mount-point: ").append(quote(m.mountPoint())).append('\n');
                    b.append("        lower-dir: ").append(quote(m.lowerDir())).append('\n');
                    b.append("        upper-dir: ").append(quote(m.upperDir())).append('\n');
                    continue;
                }
                InstanceLayout.Volume v = m.volume();
                String first = "      - ";
                if (!v.volumeId().isEmpty()) {
                    b.append(first).append("volume-id: ").append(v.volumeId()).append('\n');
                    first = "        ";
                }
                if (!v.device().isEmpty()) {
                    b.append(first).append("device: ").append(quote(v.device())).append('\n');
                    first = "        ";
                }
                b.append(first).append("mount-point: ").append(quote(m.mountPoint())).append('\n');
                if (!m.options().isEmpty()) {
                    b.append("        options: ").append(String.join(",", m.options())).append('\n');
                }
                if (v.fresh()) {
                    b.append("        format: true\n");
                    b.append("        label: ").append(v.role().length() > 12 ? v.role().substring(0, 12) : v.role()).append('\n');
                }
                proofOfBlank(v).forEach((k, val) -> b.append("        ").append(k).append(": ").append(val).append('\n'));
            }
        }
        // Without a volume there is nothing to serve, and the agent refuses SSH with nothing to serve.
        if (layout != null && layout.outputs() != null) {
            b.append("  ssh:\n    enabled: true\n");
            if (sshHostPort != null) {
                b.append(sshHostPort);
            }
            if (ownerKeys != null) {
                b.append("    owner-keys: ").append(ownerKeys).append('\n');
            }
            if (readerKeys != null) {
                b.append("    reader-keys: ").append(readerKeys).append('\n');
            }
            if (layout != null && layout.outputs() != null) {
                b.append("    outputs: ").append(quote(layout.outputs())).append('\n');
            }
            if (layout != null && layout.sources() != null) {
                b.append("    sources: ").append(quote(layout.sources())).append('\n');
            }
        }
        if (bootBuild != null) {
            b.append("  boot-build:\n    work-tree: ").append(quote(bootBuild.workTree())).append('\n');
            if (!bootBuild.command().isEmpty()) {
                b.append("    command: ").append(list(bootBuild.command())).append('\n');
            } else if (!bootBuild.profiles().isEmpty()) {
                b.append("    profiles: ").append(list(bootBuild.profiles())).append('\n');
            }
        }
        return b.toString();
    }

    /**
     * What a boot mount adds to prove its volume blank: {@code created-empty: true} for an EBS
     * volume this launch created empty (no snapshot), nothing otherwise. The agent formats a
     * blank-looking volume only with a proof; without this one it must read the whole volume.
     */
    public static Map<String, Object> proofOfBlank(InstanceLayout.Volume v) {
        return v.createdEmpty() && v.fresh() && !v.volumeId().isEmpty() ? Map.of("created-empty", true) : Map.of();
    }

    /** A YAML single-quoted scalar: no escapes but the doubled quote. */
    public static String quote(String s) {
        return "'" + s.replace("'", "''") + "'";
    }

    private static String list(List<String> items) {
        return "[" + String.join(", ", items.stream().map(AgentUserData::quote).toList()) + "]";
    }

    private static String indent(String pem) {
        StringBuilder b = new StringBuilder();
        pem.lines().forEach(l -> b.append("      ").append(l).append('\n'));
        return b.toString();
    }
}
