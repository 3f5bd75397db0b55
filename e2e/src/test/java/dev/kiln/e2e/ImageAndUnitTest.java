package dev.kiln.e2e;

import com.google.protobuf.util.JsonFormat;
import dev.kiln.controller.fleet.AgentUserData;
import dev.kiln.controller.pki.FleetCa;
import dev.kiln.controller.pki.IssuedCertificate;
import dev.kiln.proto.agent.v1.Mode;
import dev.kiln.proto.agent.v1.StatusResponse;
import dev.kiln.testkit.FreePorts;
import dev.kiln.testkit.MetadataMock;
import dev.kiln.testkit.Prerequisites;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.File;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The AMI template, its provisioning script and the agent's systemd unit, checked by the real
 * tools: {@code packer validate} with the amazon plugin (offline, no AWS credentials),
 * {@code systemd-analyze verify}, {@code bash -n}, shellcheck and {@code nft -c} (the IMDS packet
 * filter); and the unit's JVM options with the image's settings file start a real agent from the
 * user data {@code kiln launch} writes. ImdsRootOnlyTest shows the packet filter at work.
 */
class ImageAndUnitTest {

    static final Path ROOT = Path.of("..").toAbsolutePath().normalize();
    static final Path PACKER_DIR = ROOT.resolve("packer");
    static final Path TEMPLATE = PACKER_DIR.resolve("kiln-agent.pkr.hcl");
    static final Path PROVISION = PACKER_DIR.resolve("provision.sh");
    static final Path IMAGE_SETTINGS = PACKER_DIR.resolve("agent.yml");
    static final Path UNIT = ROOT.resolve("systemd/kiln-agent.service");
    /** The unit that loads the IMDS packet filter at boot, and the filter (only root reaches IMDS). */
    static final Path IMDS_UNIT = ROOT.resolve("systemd/kiln-imds.service");
    static final Path IMDS_RULE = PACKER_DIR.resolve("kiln-imds.nft");
    /** Run last in the build: fails it when the image lost a guarantee. */
    static final Path CHECK = PACKER_DIR.resolve("check-image.sh");
    /** The kinds of box with a variable file each (packer/KIND.pkrvars.hcl, docs/images.md). */
    static final List<String> KINDS = List.of("preview", "devbox", "server");

    static final String PACKER_HINT = "bash .ci/install (builds packer v1.11.2 and packer-plugin-amazon v1.3.2 from the "
            + "Go module proxy and installs the plugin with `packer plugins install --path`)";

    @TempDir
    Path dir;

    // ---------------------------------------------------------------- packer

    @Test
    void packerValidatesTheAgentTemplateWithTheAmazonPluginOfflineAndWithoutCredentials() {
        Result r = packer(PACKER_DIR, "validate", "-var", "region=eu-west-1", "-var", "agent_jar=" + AgentProcess.jar(), ".");
        assertEquals(0, r.exitCode(), r.toString());
        assertTrue(r.stdout().contains("The configuration is valid."), r.toString());
    }

    @Test
    void packerRejectsATemplateWithABrokenAmazonSetting() throws IOException {
        Path copy = copyOfTheImageSources();
        Path template = copy.resolve("packer/kiln-agent.pkr.hcl");
        String text = Files.readString(template);
        String broken = text.replaceFirst("http_tokens(\\s*)= \"required\"", "http_tokens$1= \"sometimes\"");
        assertNotEquals(text, broken, "the template sets http_tokens = \"required\"");
        Files.writeString(template, broken);

        Result r = packer(copy.resolve("packer"), "validate", "-var", "region=eu-west-1", ".");
        assertEquals(1, r.exitCode(), r.toString());
        // The amazon plugin's own check, so the plugin really prepared the source.
        assertTrue(r.output().contains("http_tokens requires either optional or required as its value"), r.toString());

        // The unbroken copy passes: the failure above is the broken field's alone.
        Files.writeString(template, text);
        Result ok = packer(copy.resolve("packer"), "validate", "-var", "region=eu-west-1", ".");
        assertEquals(0, ok.exitCode(), ok.toString());
    }

    @Test
    void packerRejectsAMissingRegionAnSshdOnPort22AndAMissingAgentJar() {
        Result noRegion = packer(PACKER_DIR, "validate", "-var", "agent_jar=" + AgentProcess.jar(), ".");
        assertEquals(1, noRegion.exitCode(), noRegion.toString());
        assertTrue(noRegion.output().contains("The region is not set: pass -var region=REGION (or set AWS_REGION)."),
                noRegion.toString());

        Result sshd22 = packer(PACKER_DIR, "validate", "-var", "region=eu-west-1", "-var", "agent_jar=" + AgentProcess.jar(),
                "-var", "system_sshd_port=22", ".");
        assertEquals(1, sshd22.exitCode(), sshd22.toString());
        assertTrue(sshd22.output().replaceAll("\\s+", " ").contains("a port other than 22 (the agent's SSH)"), sshd22.toString());

        Path missing = dir.resolve("no-such-kiln-agent.jar");
        Result noJar = packer(PACKER_DIR, "validate", "-var", "region=eu-west-1", "-var", "agent_jar=" + missing, ".");
        assertEquals(1, noJar.exitCode(), noJar.toString());
        assertTrue(noJar.output().replaceAll("\\s+", " ").contains("Bad source '" + missing + "'"), noJar.toString());
    }

    /**
     * Each kind's variable file validates, and names its AMI so that the pattern docs/images.md
     * gives ({@code kiln-KIND-*}, EC2's name filter) finds it and the agent's own pattern
     * ({@code kiln-agent-*}) does not: a plain {@code kiln launch --ami 'kiln-agent-*'} never picks
     * a preview image because it is newer.
     */
    @Test
    void packerValidatesTheTemplateWithEachKindsVariableFile() throws IOException {
        for (String kind : KINDS) {
            Path varFile = PACKER_DIR.resolve(kind + ".pkrvars.hcl");
            Result r = packer(PACKER_DIR, "validate", "-var-file=" + varFile.getFileName(), "-var", "region=eu-west-1",
                    "-var", "agent_jar=" + AgentProcess.jar(), ".");
            assertEquals(0, r.exitCode(), kind + ": " + r);
            assertTrue(r.stdout().contains("The configuration is valid."), r.toString());

            Map<String, Object> vars = packerVariables(varFile);
            String name = String.valueOf(vars.get("ami_name"));
            assertTrue(name.matches("kiln-" + kind + "-\\d{8}-\\d{6}"), kind + ": " + name);
            assertTrue(globMatches("kiln-" + kind + "-*", name), name);
            for (String other : List.of("kiln-agent-*", "kiln-preview-*", "kiln-devbox-*", "kiln-server-*")) {
                assertEquals(other.equals("kiln-" + kind + "-*"), globMatches(other, name), other + " and " + name);
            }
            String script = String.valueOf(vars.get("user_script"));
            assertTrue(Files.isRegularFile(Path.of(script)), kind + "'s user_script exists: " + script);
            assertTrue(Files.readString(varFile).contains("kiln launch --ami 'kiln-" + kind + "-*'"), "the file says how to launch it");
            assertTrue(Files.readString(ROOT.resolve("docs/images.md")).contains("ami: 'kiln-" + kind + "-*'"),
                    "docs/images.md shows the config.yml template for " + kind);
        }
        Map<String, Object> preview = packerVariables(PACKER_DIR.resolve("preview.pkrvars.hcl"));
        assertEquals(List.of("docker"), preview.get("groups"));
        assertTrue(Files.readString(PACKER_DIR.resolve("preview.pkrvars.hcl")).contains("root-equivalent"),
                "the file that adds the build user to docker says what that means");
    }

    /** EC2's name filter: {@code *} any characters, {@code ?} one. */
    private static boolean globMatches(String glob, String name) {
        return name.matches(Pattern.quote(glob).replace("*", "\\E.*\\Q").replace("?", "\\E.\\Q"));
    }

    @Test
    void packerRejectsBadExtraPackagesBuildUserGroupsAndAMissingUserScript() {
        String jar = "agent_jar=" + AgentProcess.jar();
        Result badPackage = packer(PACKER_DIR, "validate", "-var", "region=eu-west-1", "-var", jar,
                "-var", "extra_packages=[\"git\", \"nginx; rm -rf /\"]", ".");
        assertEquals(1, badPackage.exitCode(), badPackage.toString());
        assertTrue(badPackage.output().replaceAll("\\s+", " ").contains("Each of extra_packages must be a Debian package name"),
                badPackage.toString());

        Result sudo = packer(PACKER_DIR, "validate", "-var", "region=eu-west-1", "-var", jar,
                "-var", "build_user_groups=[\"docker\", \"sudo\"]", ".");
        assertEquals(1, sudo.exitCode(), sudo.toString());
        assertTrue(sudo.output().replaceAll("\\s+", " ").contains("other than root and sudo"), sudo.toString());

        Path missing = dir.resolve("no-such-script.sh");
        Result noScript = packer(PACKER_DIR, "validate", "-var", "region=eu-west-1", "-var", jar, "-var", "user_script=" + missing, ".");
        assertEquals(1, noScript.exitCode(), noScript.toString());
        assertTrue(noScript.output().replaceAll("\\s+", " ").contains("Bad source '" + missing + "'"), noScript.toString());
    }

    /**
     * check-image.sh is the build's last step, and gets the checksum of every file it compares:
     * the template's SHA256_* variables are those the script requires, computed from the files
     * the template uploads.
     */
    @Test
    void theTemplateRunsCheckImageShLastWithTheChecksumsItNeeds() throws Exception {
        String template = Files.readString(TEMPLATE);
        String build = template.substring(template.indexOf("build {"));
        int last = build.lastIndexOf("provisioner \"");
        assertTrue(build.substring(last).startsWith("provisioner \"shell\" {\n    script = \"${path.root}/check-image.sh\""),
                "the last provisioner runs check-image.sh:\n" + build.substring(last));
        Set<String> given = new TreeSet<>();
        Matcher m = Pattern.compile("\"(SHA256_[A-Z_]+)=\\$\\{sha256\\(file\\(").matcher(build.substring(last));
        while (m.find()) {
            given.add(m.group(1));
        }
        Matcher required = Pattern.compile("(?m)^for v in (SHA256_[A-Z_ 0-9]+); do$").matcher(Files.readString(CHECK));
        assertTrue(required.find(), "check-image.sh checks its SHA256_* variables in a `for v in ...; do` loop");
        assertEquals(new TreeSet<>(Arrays.asList(required.group(1).trim().split("\\s+"))), given);
        Set<String> test = new TreeSet<>();
        ProvisionInChrootTest.shippedChecksums().forEach(v -> test.add(v.substring(0, v.indexOf('='))));
        assertEquals(given, test, "ProvisionInChrootTest gives check-image.sh what the template gives");
        assertTrue(Files.isExecutable(CHECK), "check-image.sh is executable");
    }

    @Test
    void theTemplateIsInPackersCanonicalFormat() {
        Result r = packer(PACKER_DIR, "fmt", "-check", "-diff", ".");
        assertEquals(0, r.exitCode(), "run `packer fmt packer/`:\n" + r);
    }

    @Test
    void theTemplateUploadsExactlyTheFilesProvisionShExpects() throws IOException {
        Set<String> uploaded = new TreeSet<>();
        Matcher m = Pattern.compile("destination\\s*=\\s*\"\\$\\{local\\.staging}/([^\"]+)\"").matcher(Files.readString(TEMPLATE));
        while (m.find()) {
            uploaded.add(m.group(1));
        }
        Matcher expected = Pattern.compile("(?m)^for f in ([^;]+); do$").matcher(Files.readString(PROVISION));
        assertTrue(expected.find(), "provision.sh checks its inputs in a `for f in ...; do` loop");
        // The user's script is optional: provision.sh runs it when it is there.
        assertTrue(uploaded.remove("user-script"), "the template uploads user_script as user-script");
        assertTrue(Files.readString(PROVISION).contains("USER_SCRIPT=$STAGING/user-script"));
        assertEquals(new TreeSet<>(Arrays.asList(expected.group(1).trim().split("\\s+"))), uploaded);
        assertTrue(Files.readString(TEMPLATE).contains("\"PROVISION_STAGING=${local.staging}\""));
    }

    // ---------------------------------------------------------------- provision.sh

    @Test
    void provisionShParsesAndPassesShellcheck() {
        Path bash = Prerequisites.requireCommand("bash", "apt-get install bash");
        Result syntax = run(List.of(bash.toString(), "-n", PROVISION.toString()), Map.of(), ROOT, Duration.ofSeconds(30));
        assertEquals(0, syntax.exitCode(), syntax.toString());
        assertTrue(Files.isExecutable(PROVISION), "provision.sh is executable (packer runs it by path)");

        Path shellcheck = Prerequisites.requireCommand("shellcheck", "apt-get install shellcheck");
        List<String> scripts = new ArrayList<>(List.of(PROVISION.toString(), CHECK.toString()));
        for (String kind : KINDS) {
            scripts.add(PACKER_DIR.resolve("scripts/" + kind + ".sh").toString());
        }
        for (String script : scripts) {
            Result parsed = run(List.of(bash.toString(), "-n", script), Map.of(), ROOT, Duration.ofSeconds(30));
            assertEquals(0, parsed.exitCode(), parsed.toString());
        }
        List<String> lintCommand = new ArrayList<>(List.of(shellcheck.toString(), "--shell=bash", "--severity=style"));
        lintCommand.addAll(scripts);
        Result lint = run(lintCommand, Map.of(), ROOT, Duration.ofSeconds(60));
        assertEquals(0, lint.exitCode(), lint.toString());
    }

    /** The benchmarks' scripts (bench/) parse and lint clean; BenchSmokeTest runs each once in smoke mode. */
    @Test
    void benchScriptsParseAndPassShellcheck() throws Exception {
        Path bash = Prerequisites.requireCommand("bash", "apt-get install bash");
        List<String> scripts = new ArrayList<>(List.of("bench/run", "bench/lib.sh", "bench/compare"));
        try (var dirs = Files.list(ROOT.resolve("bench"))) {
            dirs.filter(d -> Files.isRegularFile(d.resolve("run"))).sorted()
                    .forEach(d -> scripts.add(ROOT.relativize(d.resolve("run")).toString()));
        }
        assertTrue(scripts.size() > 2, "bench/*/run scripts exist");
        for (String script : scripts) {
            Result syntax = run(List.of(bash.toString(), "-n", script), Map.of(), ROOT, Duration.ofSeconds(30));
            assertEquals(0, syntax.exitCode(), script + ": " + syntax);
        }
        Path shellcheck = Prerequisites.requireCommand("shellcheck", "apt-get install shellcheck");
        List<String> lint = new ArrayList<>(List.of(shellcheck.toString(), "-x", "--shell=bash", "--severity=style"));
        lint.addAll(scripts);
        Result result = run(lint, Map.of(), ROOT, Duration.ofSeconds(120));
        assertEquals(0, result.exitCode(), result.toString());
    }

    // ---------------------------------------------------------------- the systemd unit

    /**
     * systemd-analyze verify in a scratch root ({@code --root}), laid out as the image is: the unit
     * in /etc/systemd/system, systemd's own units (network-online.target, multi-user.target) copied
     * from this machine, and an executable /usr/bin/java. That works without systemd as PID 1 (as
     * in this container) and without the host having /opt/kiln: ExecStart's program is looked up
     * under the root. verify exits 0 on unknown keys and bad values and only warns, so any
     * output on stderr fails the test.
     */
    @Test
    void systemdAnalyzeVerifiesTheUnitsWithoutWarnings() throws IOException {
        Path systemdAnalyze = Prerequisites.requireCommand("systemd-analyze", "apt-get install systemd");
        Path root = imageRoot(Files.readString(UNIT), true);
        Result r = run(List.of(systemdAnalyze.toString(), "verify", "--root=" + root, "kiln-imds.service", "kiln-agent.service"),
                Map.of("SYSTEMD_LOG_COLOR", "0"), dir, Duration.ofSeconds(60));
        assertEquals(0, r.exitCode(), r.toString());
        assertEquals("", r.stderr().strip(), "systemd-analyze warned:\n" + r);
    }

    @Test
    void systemdAnalyzeReportsABrokenUnitAndAMissingJava() throws IOException {
        Path systemdAnalyze = Prerequisites.requireCommand("systemd-analyze", "apt-get install systemd");
        String unit = Files.readString(UNIT);

        Path broken = imageRoot(unit.replace("KillMode=mixed", "KillMode=mixd"), true);
        Result warned = run(List.of(systemdAnalyze.toString(), "verify", "--root=" + broken, "kiln-agent.service"),
                Map.of("SYSTEMD_LOG_COLOR", "0"), dir, Duration.ofSeconds(60));
        assertTrue(warned.stderr().contains("Failed to parse kill mode specification, ignoring: mixd"), warned.toString());

        Path noJava = imageRoot(unit, false);
        Result failed = run(List.of(systemdAnalyze.toString(), "verify", "--root=" + noJava, "kiln-agent.service"),
                Map.of("SYSTEMD_LOG_COLOR", "0"), dir, Duration.ofSeconds(60));
        assertNotEquals(0, failed.exitCode(), failed.toString());
        assertTrue(failed.stderr().contains("Command /usr/bin/java is not executable"), failed.toString());
    }

    @Test
    void theUnitRunsTheAgentAsTheDesignSays() throws IOException {
        Map<String, List<String>> service = unitSection("Service");
        Map<String, List<String>> unit = unitSection("Unit");

        assertEquals(List.of("root"), service.get("User"), "root: mount, fsfreeze, losetup; builds drop to `kiln`");
        String execStart = single(service, "ExecStart");
        assertTrue(execStart.matches("/usr/bin/java \\$AGENT_JAVA_OPTS \\$AGENT_CDS_OPTS -jar /opt/kiln/kiln-agent\\.jar"), execStart);
        assertEquals("/etc/kiln/agent.yml", environment().get("MICRONAUT_CONFIG_FILES"));
        assertTrue(environment().get("AGENT_JAVA_OPTS").contains("-Xmx"), "the heap is capped in the JVM");
        assertEquals(dev.kiln.controller.local.LocalAgent.DEFAULT_JAVA_OPTIONS,
                List.of(environment().get("AGENT_JAVA_OPTS").trim().split("\\s+")),
                "`kiln up --local` and the local provider start their agents with the unit's JVM options");
        assertEquals(dev.kiln.controller.local.LocalAgent.DEFAULT_ENVIRONMENT,
                environment().entrySet().stream().filter(e -> e.getKey().startsWith("MALLOC_"))
                        .collect(java.util.stream.Collectors.toMap(Map.Entry::getKey, Map.Entry::getValue)),
                "`kiln up --local` and the local provider give their agents the unit's malloc settings");
        assertTrue(environment().keySet().stream().noneMatch(k -> k.startsWith("KILN_")),
                "KILN_* variables are agent settings; the unit sets none");

        assertEquals(List.of("on-failure"), service.get("Restart"));
        assertEquals(List.of("78"), service.get("RestartPreventExitStatus"), "a configuration error is not restarted");
        assertEquals(List.of("143"), service.get("SuccessExitStatus"), "a JVM stopped by SIGTERM exits 143");
        assertEquals(List.of("mixed"), service.get("KillMode"), "SIGTERM to the agent first, the cgroup after");
        assertTrue(seconds(single(service, "TimeoutStopSec")) >= 110, "longer than the 100 s drain budget");
        assertEquals(List.of("continue"), service.get("OOMPolicy"), "a build's OOM kill must not stop the agent");
        assertEquals(List.of("kiln"), service.get("StateDirectory"));
        assertTrue(unit.get("After").contains("network-online.target"), unit.toString());
        assertTrue(unit.get("Wants").contains("network-online.target"), unit.toString());
        // The IMDS packet filter is loaded first; Wants, not Requires: without it the agent still
        // starts, and reports the problem in kiln status.
        assertTrue(unit.get("Wants").contains("kiln-imds.service"), unit.toString());
        assertTrue(unit.get("After").contains("kiln-imds.service"), unit.toString());
        assertFalse(unit.containsKey("Requires") || unit.containsKey("Requisite") || unit.containsKey("BindsTo"), unit.toString());
        assertEquals(List.of("multi-user.target"), unitSection("Install").get("WantedBy"));

        // Settings that would put the agent's mounts in a private namespace, hide devices or
        // break the setuid fusermount3 / the JIT (the unit's comments say why for each).
        for (String key : List.of("ProtectSystem", "ProtectHome", "PrivateTmp", "PrivateDevices", "ReadWritePaths",
                "ReadOnlyPaths", "ProtectKernelTunables", "ProtectKernelModules", "ProtectKernelLogs",
                "ProtectControlGroups", "ProtectProc", "ProtectClock", "DeviceAllow", "DevicePolicy",
                "NoNewPrivileges", "RestrictNamespaces", "MemoryDenyWriteExecute", "MemoryMax", "MemoryHigh",
                "MountFlags", "PrivateMounts", "TemporaryFileSystem")) {
            assertFalse(service.containsKey(key), key + " must not be set");
        }
        // The agent powers off through `systemctl poweroff`; nothing here may halt the machine.
        assertFalse(Files.readString(UNIT).toLowerCase().matches("(?s).*\\bhalt\\b.*"), "no halt in the unit");
        assertFalse(Files.readString(PROVISION).toLowerCase().matches("(?s).*\\bhalt\\b.*"), "no halt in provision.sh");
    }

    /** kiln-imds.service loads the IMDS packet filter at every boot, before the network and the agent. */
    @Test
    void theImdsUnitLoadsThePacketFilterBeforeTheNetworkAndTheAgent() throws IOException {
        Map<String, List<String>> unit = unitSection(IMDS_UNIT, "Unit");
        Map<String, List<String>> service = unitSection(IMDS_UNIT, "Service");
        assertEquals(List.of("/usr/sbin/nft", "-f", "/etc/kiln/imds.nft"), service.get("ExecStart"));
        assertEquals(dev.kiln.agent.instance.ImdsRootOnly.RULE_FILE, service.get("ExecStart").get(2),
                "the file the agent's problem message names");
        assertEquals(List.of("oneshot"), service.get("Type"));
        assertEquals(List.of("yes"), service.get("RemainAfterExit"));
        assertFalse(service.containsKey("ExecStop"), "stopping the unit must not open IMDS to the build user");
        assertEquals(List.of("no"), unit.get("DefaultDependencies"), "early boot, as Debian's nftables.service");
        assertTrue(unit.get("Before").containsAll(List.of("network-pre.target", "kiln-agent.service")), unit.toString());
        assertTrue(unit.get("Wants").contains("network-pre.target"), unit.toString());
        assertEquals(List.of("sysinit.target"), unitSection(IMDS_UNIT, "Install").get("WantedBy"));
        assertTrue(Files.readString(PROVISION).contains("systemctl enable kiln-imds.service kiln-agent.service"),
                "provision.sh enables it");
    }

    /**
     * The rule file parses and the kernel accepts it ({@code nft -c}: checked, never committed), in
     * a network namespace of its own with no network, so this machine's own rules are not involved;
     * a broken copy is refused, so the check can fail. ImdsRootOnlyTest loads it and shows it work.
     */
    @Test
    void nftAcceptsTheImdsRuleFileAndRefusesABrokenCopy() throws IOException {
        Prerequisites.requireRoot("nft -c talks to the kernel's nftables");
        Path nft = Prerequisites.requireCommand("nft", "apt-get install nftables (bash .ci/install does it)");
        Result ok = run(withOffline(nft.toString(), "-c", "-f", IMDS_RULE.toString()), Map.of(), dir, Duration.ofSeconds(30));
        assertEquals(0, ok.exitCode(), ok.toString());

        String text = Files.readString(IMDS_RULE);
        assertTrue(text.contains("table inet kiln_imds {"), "the table the agent's problem message names");
        for (String line : List.of("ip daddr 169.254.169.254 meta skuid != 0 counter reject",
                "ip6 daddr fd00:ec2::254 meta skuid != 0 counter reject")) {
            assertTrue(text.contains(line), line);
        }
        Path broken = dir.resolve("broken.nft");
        Files.writeString(broken, text.replace("meta skuid != 0", "meta skuidd != 0"));
        Result refused = run(withOffline(nft.toString(), "-c", "-f", broken.toString()), Map.of(), dir, Duration.ofSeconds(30));
        assertNotEquals(0, refused.exitCode(), refused.toString());
        assertTrue(refused.stderr().contains("skuidd"), refused.toString());
    }

    private static List<String> withOffline(String... command) {
        List<String> c = new ArrayList<>(offline());
        c.addAll(List.of(command));
        return c;
    }

    /**
     * The agent as systemd starts it on an instance: the unit's JVM options, the image's
     * /etc/kiln/agent.yml, and the user data `kiln launch` writes (read through IMDSv2 from AWS's
     * metadata mock). Only what a test machine needs differs, by KILN_* environment variables:
     * loopback address and a free port, a scratch state directory, no backstop timer and no
     * power-off. systemd's stop (SIGTERM) then ends it with status 143, well within TimeoutStopSec.
     */
    @Test
    void theUnitsJvmOptionsAndTheImagesSettingsRunAnAgentFromLaunchUserData() throws Exception {
        Prerequisites.requireCommand(MetadataMock.BINARY_NAME, MetadataMock.INSTALL_HINT);
        Kiln kiln = new Kiln(dir.resolve("home"));
        Kiln.Run init = kiln.run("init");
        assertEquals(0, init.exitCode(), init.toString());
        FleetCa ca = FleetCa.load(kiln.configDir().resolve("fleet-ca.crt"), kiln.configDir().resolve("fleet-ca.key"));
        String instanceId = "i-0feedfacecafe0001";
        Instant now = Instant.now();
        IssuedCertificate cert = ca.issueServer("kiln-agent " + instanceId, List.of("localhost"), List.of("127.0.0.1"),
                now.minus(Duration.ofMinutes(5)), now.plus(Duration.ofDays(1)));
        String userData = AgentUserData.yaml(cert, ca, 7443, Duration.ofHours(2), Duration.ofHours(12));

        // The unit's options as ExecStart passes them, the class-data archive's included: this host
        // has no /opt/kiln/kiln-agent.jsa, which the JVM must shrug off (as after a JDK upgrade).
        List<String> jvmOptions = new ArrayList<>(List.of(environment().get("AGENT_JAVA_OPTS").trim().split("\\s+")));
        jvmOptions.addAll(List.of(environment().get("AGENT_CDS_OPTS").trim().split("\\s+")));
        int port = FreePorts.loopbackPort();
        try (MetadataMock imds = MetadataMock.builder().instanceId(instanceId).region("eu-west-1").userData(userData).start();
             AgentProcess agent = AgentProcess.start(jvmOptions, IMAGE_SETTINGS, Map.of(
                     "MALLOC_ARENA_MAX", environment().get("MALLOC_ARENA_MAX"),
                     "KILN_IMDS_ENDPOINT", imds.endpoint().toString(),
                     "KILN_GRPC_HOST", "127.0.0.1",
                     "KILN_GRPC_PORT", Integer.toString(port),
                     "KILN_STATE_DIR", dir.resolve("state").toString(),
                     "KILN_LEASE_BACKSTOP", "none",      // never arm a real poweroff timer on a test machine
                     "KILN_LEASE_POWER_OFF", "exit"))) {
            assertEquals(port, agent.awaitListening(Duration.ofSeconds(90)), agent.output());

            Kiln.Run json = kiln.run("status", "--agent", "127.0.0.1:" + port, "-o", "json");
            assertEquals(0, json.exitCode(), json.toString());
            StatusResponse.Builder status = StatusResponse.newBuilder();
            JsonFormat.parser().merge(json.out(), status);
            assertEquals(Mode.MODE_EC2, status.getMode());
            assertEquals(instanceId, status.getInstanceId());
            assertTrue(Files.isRegularFile(dir.resolve("state/logs/agent.log")), "the agent keeps its own log file");
            System.out.println("[ImageAndUnitTest] agent with the unit's JVM options (" + String.join(" ", jvmOptions)
                    + "): " + rss(agent.pid()));

            Duration timeoutStop = Duration.ofSeconds(seconds(single(unitSection("Service"), "TimeoutStopSec")));
            long started = System.nanoTime();
            ProcessHandle.of(agent.pid()).orElseThrow().destroy(); // SIGTERM, as systemd's stop sends
            int exit = agent.awaitExit(timeoutStop);
            Duration took = Duration.ofNanos(System.nanoTime() - started);
            assertEquals(143, exit, "SuccessExitStatus=143 counts this stop as clean; output:\n" + agent.output());
            System.out.println("[ImageAndUnitTest] SIGTERM to exit took " + took.toMillis() + " ms");
        }
    }

    // ---------------------------------------------------------------- helpers

    /** Runs packer as a user would, minus AWS credentials, HashiCorp's version check and (as root) the network. */
    private Result packer(Path workDir, String... args) {
        Path packer = Prerequisites.requireCommand("packer", PACKER_HINT);
        Map<String, String> env = new HashMap<>();
        env.put("CHECKPOINT_DISABLE", "1");
        env.put("AWS_EC2_METADATA_DISABLED", "true");
        Result plugins = run(List.of(packer.toString(), "plugins", "installed"), env, workDir, Duration.ofSeconds(60));
        Prerequisites.require("packer's amazon plugin (github.com/hashicorp/amazon)",
                plugins.stdout().contains("/github.com/hashicorp/amazon/packer-plugin-amazon_v"), PACKER_HINT);
        List<String> command = new ArrayList<>(offline());
        command.add(packer.toString());
        command.addAll(List.of(args));
        return run(command, env, workDir, Duration.ofSeconds(120));
    }

    /**
     * What packer itself reads from a variable file (packer console, offline): the extra packages,
     * the build user's groups, the AMI's name and the user script's absolute path.
     */
    static Map<String, Object> packerVariables(Path varFile) {
        Path packer = Prerequisites.requireCommand("packer", PACKER_HINT);
        List<String> command = new ArrayList<>(offline());
        command.addAll(List.of("bash", "-c", "printf '%s\\n' \"$EXPRESSION\" | \"$0\" console \"$@\"", packer.toString(),
                "-var-file=" + varFile, "-var", "region=eu-west-1", "-var", "agent_jar=" + AgentProcess.jar(), "."));
        Result r = run(command, Map.of("CHECKPOINT_DISABLE", "1", "EXPRESSION", "jsonencode({packages = var.extra_packages, "
                + "groups = var.build_user_groups, ami_name = local.ami_name, user_script = local.user_script})"),
                PACKER_DIR, Duration.ofSeconds(120));
        assertEquals(0, r.exitCode(), r.toString());
        // packer prints JSON, which is YAML's flow style.
        return new org.yaml.snakeyaml.Yaml().load(r.stdout());
    }

    private static List<String> offlineCommand;

    /**
     * As root, {@code unshare --net}: the command runs in a new network namespace with no
     * interface up, so it provably needs no network (no AWS API, no GitHub, no checkpoint). Where
     * that is not possible it runs as is, without AWS credentials.
     */
    private static synchronized List<String> offline() {
        if (offlineCommand == null) {
            offlineCommand = List.of();
            var unshare = Prerequisites.findCommand("unshare", System.getenv("PATH"));
            if (Prerequisites.isRoot() && unshare.isPresent()) {
                List<String> candidate = List.of(unshare.get().toString(), "--net", "--");
                List<String> probe = new ArrayList<>(candidate);
                probe.add("true");
                if (run(probe, Map.of(), Path.of("/"), Duration.ofSeconds(30)).exitCode() == 0) {
                    offlineCommand = candidate;
                }
            }
            System.out.println("[ImageAndUnitTest] packer runs " + (offlineCommand.isEmpty()
                    ? "with the machine's network (cannot unshare --net here)" : "with no network (unshare --net)"));
        }
        return offlineCommand;
    }

    /** packer/ and systemd/ copied into a scratch tree (with a stand-in agent jar), to break a copy. */
    private Path copyOfTheImageSources() throws IOException {
        Path copy = dir.resolve("src");
        for (Path f : List.of(TEMPLATE, PROVISION, CHECK, IMAGE_SETTINGS, UNIT, IMDS_UNIT, IMDS_RULE,
                ROOT.resolve("systemd/kiln-boot-backstop"), ROOT.resolve("systemd/kiln-boot-backstop.service"))) {
            Path target = copy.resolve(ROOT.relativize(f));
            Files.createDirectories(target.getParent());
            Files.copy(f, target, StandardCopyOption.COPY_ATTRIBUTES);
        }
        Path jar = copy.resolve("agent/target/kiln-agent.jar");
        Files.createDirectories(jar.getParent());
        Files.writeString(jar, "a stand-in for the agent jar\n");
        return copy;
    }

    /** A scratch root for systemd-analyze --root: the image's units, systemd's units, /usr/bin/java, /usr/sbin/nft. */
    private Path imageRoot(String unitText, boolean withJava) throws IOException {
        Path root = Files.createTempDirectory(dir, "root");
        Path systemUnits = Stream.of("/usr/lib/systemd/system", "/lib/systemd/system").map(Path::of)
                .filter(Files::isDirectory).findFirst()
                .orElseThrow(() -> new IllegalStateException("no systemd unit directory on this machine"));
        copyTree(systemUnits, root.resolve("usr/lib/systemd/system"));
        Path unit = root.resolve("etc/systemd/system/kiln-agent.service");
        Files.createDirectories(unit.getParent());
        Files.writeString(unit, unitText);
        Files.copy(IMDS_UNIT, unit.resolveSibling("kiln-imds.service"));
        Path jar = root.resolve("opt/kiln/kiln-agent.jar");
        Files.createDirectories(jar.getParent());
        Files.writeString(jar, "a stand-in for the agent jar\n");
        Path nft = root.resolve("usr/sbin/nft");
        Files.createDirectories(nft.getParent());
        Files.writeString(nft, "#!/bin/sh\nexit 0\n");
        Files.setPosixFilePermissions(nft, PosixFilePermissions.fromString("rwxr-xr-x"));
        if (withJava) {
            Path java = root.resolve("usr/bin/java");
            Files.createDirectories(java.getParent());
            Files.writeString(java, "#!/bin/sh\nexit 0\n");
            Files.setPosixFilePermissions(java, PosixFilePermissions.fromString("rwxr-xr-x"));
        }
        return root;
    }

    private static void copyTree(Path from, Path to) throws IOException {
        try (Stream<Path> all = Files.walk(from)) {
            for (Path p : (Iterable<Path>) all::iterator) {
                Path target = to.resolve(from.relativize(p).toString());
                if (Files.isSymbolicLink(p)) {
                    Files.createDirectories(target.getParent());
                    Files.copy(p, target, java.nio.file.LinkOption.NOFOLLOW_LINKS);
                } else if (Files.isDirectory(p)) {
                    Files.createDirectories(target);
                } else {
                    Files.copy(p, target);
                }
            }
        }
    }

    /** One section of the agent's unit file: key to its values in order (comments and blank lines skipped). */
    private static Map<String, List<String>> unitSection(String name) throws IOException {
        return unitSection(UNIT, name);
    }

    /** One section of a unit file: key to its values in order (comments and blank lines skipped). */
    private static Map<String, List<String>> unitSection(Path unitFile, String name) throws IOException {
        Map<String, List<String>> values = new LinkedHashMap<>();
        String section = null;
        for (String raw : Files.readAllLines(unitFile)) {
            String line = raw.strip();
            if (line.isEmpty() || line.startsWith("#") || line.startsWith(";")) {
                continue;
            }
            if (line.startsWith("[") && line.endsWith("]")) {
                section = line.substring(1, line.length() - 1);
                continue;
            }
            int eq = line.indexOf('=');
            if (name.equals(section) && eq > 0) {
                String key = line.substring(0, eq).strip();
                for (String v : line.substring(eq + 1).strip().split("\\s+(?=(?:[^\"]*\"[^\"]*\")*[^\"]*$)")) {
                    if (!v.isEmpty()) {
                        values.computeIfAbsent(key, k -> new ArrayList<>()).add(v);
                    }
                }
            }
        }
        return values;
    }

    /** The unit's Environment= assignments (quotes removed). */
    private static Map<String, String> environment() throws IOException {
        Map<String, String> env = new LinkedHashMap<>();
        for (String assignment : unitSection("Service").getOrDefault("Environment", List.of())) {
            String a = assignment.startsWith("\"") && assignment.endsWith("\"")
                    ? assignment.substring(1, assignment.length() - 1) : assignment;
            int eq = a.indexOf('=');
            env.put(a.substring(0, eq), a.substring(eq + 1));
        }
        return env;
    }

    private static String single(Map<String, List<String>> section, String key) {
        List<String> v = section.get(key);
        assertTrue(v != null && !v.isEmpty(), key + " is set");
        return String.join(" ", v);
    }

    /** A systemd time span such as 120s, 2min or 120 (seconds). */
    private static long seconds(String span) {
        Matcher m = Pattern.compile("(\\d+)\\s*(s|sec|min|m)?").matcher(span.strip());
        assertTrue(m.matches(), "a simple time span: " + span);
        long n = Long.parseLong(m.group(1));
        return m.group(2) != null && m.group(2).startsWith("m") ? n * 60 : n;
    }

    private static String rss(long pid) {
        try {
            return Files.readAllLines(Path.of("/proc/" + pid + "/status")).stream()
                    .filter(l -> l.startsWith("VmRSS:") || l.startsWith("VmHWM:"))
                    .map(l -> l.replaceAll("\\s+", " ")).reduce((a, b) -> a + ", " + b).orElse("no /proc status");
        } catch (IOException e) {
            return "no /proc status";
        }
    }

    /** What a finished command printed, and its exit status. */
    record Result(List<String> command, int exitCode, String stdout, String stderr) {
        String output() {
            return stdout + stderr;
        }

        @Override
        public String toString() {
            return String.join(" ", command) + "\nexit " + exitCode + "\n--- stdout\n" + stdout + "--- stderr\n" + stderr;
        }
    }

    /** Runs a command with no stdin, in {@code workDir}, with extra environment; kills it after {@code timeout}. */
    static Result run(List<String> command, Map<String, String> env, Path workDir, Duration timeout) {
        try {
            ProcessBuilder pb = new ProcessBuilder(command).directory(workDir.toFile())
                    .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")));
            // No AWS credentials or region from the environment: validation must not need them.
            pb.environment().keySet().removeIf(k -> k.startsWith("AWS_") || k.startsWith("PACKER_LOG"));
            pb.environment().putAll(env);
            Process p = pb.start();
            CompletableFuture<String> out = CompletableFuture.supplyAsync(() -> read(p.getInputStream()));
            CompletableFuture<String> err = CompletableFuture.supplyAsync(() -> read(p.getErrorStream()));
            if (!p.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS)) {
                p.destroyForcibly();
                throw new AssertionError(String.join(" ", command) + " did not finish within " + timeout);
            }
            return new Result(command, p.exitValue(), out.join(), err.join());
        } catch (IOException e) {
            throw new UncheckedIOException("could not run " + String.join(" ", command), e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AssertionError("interrupted", e);
        }
    }

    private static String read(java.io.InputStream in) {
        try {
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        } catch (IOException e) {
            return "";
        }
    }
}
