package dev.kiln.controller.fleet;

import dev.kiln.controller.ExitCodes;
import dev.kiln.controller.KilnException;
import dev.kiln.controller.pki.FleetCa;
import dev.kiln.controller.pki.IssuedCertificate;
import dev.kiln.controller.pki.Pem;
import org.yaml.snakeyaml.DumperOptions;
import org.yaml.snakeyaml.Yaml;
import org.yaml.snakeyaml.nodes.Tag;
import org.yaml.snakeyaml.reader.StreamReader;
import org.yaml.snakeyaml.representer.Represent;
import org.yaml.snakeyaml.representer.Representer;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;

/**
 * The agent's settings as `kiln launch` writes them into user data: the same shape as
 * /etc/kiln/agent.yml, with the TLS material inline: a bootstrap certificate and key issued for
 * this launch (valid for minutes, replaced at enrollment by a key the agent generates and keeps;
 * docs/security.md) and the fleet CA.
 *
 * <p>The settings are built as maps and lists and written by SnakeYAML, never pasted into YAML
 * text: whatever a role, path, key comment or profile holds, the agent reads back that same
 * string (a role {@code no} stays "no", a newline stays inside its value), and no value can add
 * a key or an element. The local provider writes its agents' agent.yml the same way.
 */
public final class AgentUserData {

    /** EC2's limit on user data, in bytes before base64. */
    public static final int MAX_BYTES = 16 * 1024;

    /** Line breaks other than \n: a string holding one is written double-quoted (see TextRepresenter). */
    private static final Pattern NORMALISED_BREAK = Pattern.compile("[\r\u0085\u2028\u2029]");

    private AgentUserData() {
    }

    /**
     * A build the agent starts once per boot, after its boot mounts ({@code kiln.boot-build}).
     *
     * @param workTree where it runs
     * @param profiles tup profiles (empty: all), when {@code command} is empty
     * @param command  argv of a command build (run in place of tup), or empty
     */
    public record BootBuild(String workTree, List<String> profiles, List<String> command) {
    }

    /**
     * What {@code kiln.ssh} holds besides what the layout serves.
     *
     * @param host       the bind address, or null for the agent's default
     * @param port       the port, or null for the agent's default
     * @param ownerKeys  kiln.ssh.owner-keys: an authorized_keys path or its text, or null
     * @param readerKeys kiln.ssh.reader-keys: the same, or null
     * @param forwardPorts kiln.ssh.forward-ports: loopback ports the owner may forward to (empty: none)
     */
    public record Ssh(String host, Integer port, String ownerKeys, String readerKeys, List<Integer> forwardPorts) {
        public Ssh(String host, Integer port, String ownerKeys, String readerKeys) {
            this(host, port, ownerKeys, readerKeys, List.of());
        }
    }

    /**
     * What the instance runs besides builds: its labels ({@code kiln.labels}, given to the boot
     * script and services as KILN_LABEL_KEY), a boot script ({@code kiln.boot-script}) and
     * services ({@code kiln.services}).
     *
     * @param labels     the instance's labels
     * @param bootScript the boot script's text, or null
     * @param services   the services, in order
     */
    public record Workload(java.util.Map<String, String> labels, BootScript bootScript, List<ServiceSpec> services) {

        /** No labels, no boot script, no services. */
        public static final Workload NONE = new Workload(Map.of(), null, List.of());
    }

    /** The {@code kiln} entries of a workload: labels, boot-script and services, each only when there is one. */
    public static Map<String, Object> workload(Workload w) {
        Map<String, Object> kiln = new LinkedHashMap<>();
        if (w == null) {
            return kiln;
        }
        if (!w.labels().isEmpty()) {
            kiln.put("labels", new java.util.TreeMap<>(w.labels()));
        }
        if (w.bootScript() != null) {
            kiln.put("boot-script", w.bootScript().text());
        }
        if (!w.services().isEmpty()) {
            kiln.put("services", w.services().stream().map(ServiceSpec::settings).toList());
        }
        return kiln;
    }

    public static String yaml(IssuedCertificate cert, FleetCa ca, int grpcPort, Duration ttl, Duration maxLifetime) {
        return yaml(cert, ca, grpcPort, ttl, maxLifetime, null, null, null);
    }

    public static String yaml(IssuedCertificate cert, FleetCa ca, int grpcPort, Duration ttl, Duration maxLifetime,
                              InstanceLayout layout, String ownerKey, BootBuild bootBuild) {
        return yaml(cert, ca, grpcPort, ttl, maxLifetime, layout, ownerKey, bootBuild, Workload.NONE, List.of());
    }

    /**
     * The settings with the instance's layout (boot mounts and what SSH serves), the owner's SSH
     * public key, an optional boot build, its workload and the loopback ports the owner may forward
     * to ({@code kiln.ssh.forward-ports}); null leaves each out.
     *
     * @throws KilnException when the result is more than EC2 takes ({@link #MAX_BYTES})
     */
    public static String yaml(IssuedCertificate cert, FleetCa ca, int grpcPort, Duration ttl, Duration maxLifetime,
                              InstanceLayout layout, String ownerKey, BootBuild bootBuild, Workload workload,
                              List<Integer> forwardPorts) {
        return yaml(cert, ca, grpcPort, ttl, maxLifetime, layout, ownerKey, bootBuild, workload, forwardPorts, Map.of());
    }

    /**
     * As above, with further {@code kiln} entries after the others (e.g. {@code schedules}).
     *
     * @throws KilnException when the result is more than EC2 takes ({@link #MAX_BYTES})
     */
    public static String yaml(IssuedCertificate cert, FleetCa ca, int grpcPort, Duration ttl, Duration maxLifetime,
                              InstanceLayout layout, String ownerKey, BootBuild bootBuild, Workload workload,
                              List<Integer> forwardPorts, Map<String, Object> extra) {
        Map<String, Object> kiln = new LinkedHashMap<>();
        kiln.put("mode", "ec2");
        kiln.put("grpc", map("host", "0.0.0.0", "port", grpcPort));
        kiln.put("tls", map("cert", cert.certificatePem(), "key", cert.privateKeyPem(), "ca", Pem.encode(ca.certificate())));
        kiln.putAll(sections(ttl, maxLifetime, layout, new Ssh(null, null, ownerKey, null, forwardPorts), bootBuild));
        kiln.putAll(workload(workload));
        kiln.putAll(extra);
        String text = write("kiln-agent settings, written by `kiln launch`", kiln);
        int bytes = text.getBytes(StandardCharsets.UTF_8).length;
        if (bytes > MAX_BYTES && workload != null && workload.bootScript() != null) {
            kiln.remove("boot-script");
            int rest = write("kiln-agent settings, written by `kiln launch`", kiln).getBytes(StandardCharsets.UTF_8).length;
            String script = workload.bootScript().text();
            if (rest < MAX_BYTES) {
                throw new KilnException(ExitCodes.USAGE, "--boot-script " + workload.bootScript().file() + " does not fit in"
                        + " the user data: EC2 takes at most " + MAX_BYTES + " bytes; Kiln's own settings for this launch (TLS"
                        + " certificate, key and CA, SSH key, lease, volumes, labels, services) take " + rest + ", which leaves "
                        + (MAX_BYTES - rest) + " for the boot script as YAML writes it (its text, each line indented by 4"
                        + " spaces); this one takes " + (bytes - rest) + " (" + script.getBytes(StandardCharsets.UTF_8).length
                        + " bytes of text in " + script.lines().count() + " lines). Nothing was launched: keep the boot"
                        + " script short and let it fetch the rest (git clone, a volume)");
            }
        }
        if (bytes > MAX_BYTES) {
            throw new KilnException(ExitCodes.USAGE, "the agent's settings come to " + bytes + " bytes of user data; EC2"
                    + " takes at most " + MAX_BYTES + " (fewer volumes, services or labels, a shorter SSH key file, boot command or boot script)");
        }
        return text;
    }

    /**
     * The {@code kiln} entries after {@code kiln.tls}: lease, boot mounts, SSH and boot build.
     *
     * @param ttl       the lease, or null for none ({@code --forever}: {@code kiln.lease.forever: true})
     * @param layout    the instance's layout, or null for no mounts and no SSH
     * @param ssh       listen address and keys of the SSH server, used when the layout serves something; null for none
     * @param bootBuild the boot build, or null
     * @return a map to put into the {@code kiln} map given to {@link #write}
     */
    public static Map<String, Object> sections(Duration ttl, Duration maxLifetime, InstanceLayout layout, Ssh ssh,
                                               BootBuild bootBuild) {
        Map<String, Object> kiln = new LinkedHashMap<>();
        // No ttl: launched with --forever, no deadline (kiln.lease.forever).
        kiln.put("lease", ttl == null ? map("forever", true, "max-lifetime", maxLifetime.toSeconds() + "s")
                : map("ttl", ttl.toSeconds() + "s", "max-lifetime", maxLifetime.toSeconds() + "s"));
        if (layout != null && !layout.mounts().isEmpty()) {
            List<Object> mounts = new ArrayList<>();
            for (InstanceLayout.Mount m : layout.mounts()) {
                mounts.add(mount(m));
            }
            kiln.put("volumes", map("mounts", mounts));
        }
        // Without a volume there is nothing to serve, and the agent refuses SSH with nothing to serve.
        if (layout != null && layout.outputs() != null) {
            Ssh given = ssh != null ? ssh : new Ssh(null, null, null, null);
            Map<String, Object> s = new LinkedHashMap<>();
            s.put("enabled", true);
            putIfSet(s, "host", given.host());
            putIfSet(s, "port", given.port());
            putIfSet(s, "owner-keys", given.ownerKeys());
            putIfSet(s, "reader-keys", given.readerKeys());
            s.put("outputs", layout.outputs());
            putIfSet(s, "sources", layout.sources());
            if (given.forwardPorts() != null && !given.forwardPorts().isEmpty()) {
                s.put("forward-ports", List.copyOf(given.forwardPorts()));
            }
            kiln.put("ssh", s);
        }
        if (bootBuild != null) {
            Map<String, Object> b = new LinkedHashMap<>();
            b.put("work-tree", bootBuild.workTree());
            if (!bootBuild.command().isEmpty()) {
                b.put("command", List.copyOf(bootBuild.command()));
            } else if (!bootBuild.profiles().isEmpty()) {
                b.put("profiles", List.copyOf(bootBuild.profiles()));
            }
            kiln.put("boot-build", b);
        }
        return kiln;
    }

    private static Map<String, Object> mount(InstanceLayout.Mount m) {
        Map<String, Object> out = new LinkedHashMap<>();
        if (m.overlay()) {
            out.put("mount-point", m.mountPoint());
            out.put("lower-dir", m.lowerDir());
            out.put("upper-dir", m.upperDir());
            return out;
        }
        InstanceLayout.Volume v = m.volume();
        if (!v.volumeId().isEmpty()) {
            out.put("volume-id", v.volumeId());
        }
        if (!v.device().isEmpty()) {
            out.put("device", v.device());
        }
        out.put("mount-point", m.mountPoint());
        if (!m.options().isEmpty()) {
            out.put("options", String.join(",", m.options()));
        }
        if (v.fresh()) {
            out.put("format", true);
            // The filesystem label: the role, cut to xfs's 12 (whole characters, never half of one).
            out.put("label", v.role().codePointCount(0, v.role().length()) > 12
                    ? v.role().substring(0, v.role().offsetByCodePoints(0, 12)) : v.role());
        }
        out.putAll(proofOfBlank(v));
        return out;
    }

    /**
     * What a boot mount adds to prove its volume blank: {@code created-empty: true} for an EBS
     * volume this launch created empty (no snapshot), nothing otherwise. The agent formats a
     * blank-looking volume only with a proof; without this one it must read the whole volume.
     */
    public static Map<String, Object> proofOfBlank(InstanceLayout.Volume v) {
        return v.createdEmpty() && v.fresh() && !v.volumeId().isEmpty() ? Map.of("created-empty", true) : Map.of();
    }

    /**
     * The agent's settings file or user data: {@code kiln:} and these entries, as YAML, after a
     * comment line.
     *
     * @param comment one line saying who wrote it
     * @param kiln    the entries of the {@code kiln} map: maps, lists, strings, integers and booleans
     */
    public static String write(String comment, Map<String, Object> kiln) {
        if (comment.contains("\n") || comment.contains("\r")) {
            throw new IllegalArgumentException("the comment is one line: " + comment);
        }
        DumperOptions options = new DumperOptions();
        options.setDefaultFlowStyle(DumperOptions.FlowStyle.BLOCK);
        options.setIndent(2);
        options.setIndicatorIndent(2);
        options.setIndentWithIndicator(true);
        // Long values stay on one line: folding them is correct YAML but harder to read in the console.
        options.setSplitLines(false);
        // The same list or map object twice is written twice, never as an alias the agent refuses.
        options.setDereferenceAliases(true);
        return "# " + comment + "\n" + new Yaml(new TextRepresenter(options), options).dump(map("kiln", kiln));
    }

    /**
     * SnakeYAML's representer, with two changes for strings. One that YAML cannot hold as is
     * (NUL, most control characters) is written double-quoted with escapes, where SnakeYAML would
     * write its UTF-8 bytes as !!binary, which the agent refuses. One holding CR, NEL, LS or PS is
     * also written double-quoted: in a block scalar a reader turns CR and NEL into \n. Other
     * multi-line strings stay literal blocks, so PEM and authorized_keys read as they are.
     */
    private static final class TextRepresenter extends Representer {
        TextRepresenter(DumperOptions options) {
            super(options);
            Represent strings = representers.get(String.class);
            representers.put(String.class, data -> {
                String s = data.toString();
                if (!StreamReader.isPrintable(s) || NORMALISED_BREAK.matcher(s).find()) {
                    return representScalar(Tag.STR, s, DumperOptions.ScalarStyle.DOUBLE_QUOTED);
                }
                return strings.representData(data);
            });
        }
    }

    private static void putIfSet(Map<String, Object> m, String key, Object value) {
        if (value != null) {
            m.put(key, value);
        }
    }

    private static Map<String, Object> map(Object... keysAndValues) {
        Map<String, Object> m = new LinkedHashMap<>();
        for (int i = 0; i < keysAndValues.length; i += 2) {
            m.put((String) keysAndValues[i], keysAndValues[i + 1]);
        }
        return m;
    }
}
