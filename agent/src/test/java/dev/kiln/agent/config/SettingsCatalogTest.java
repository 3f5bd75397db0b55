package dev.kiln.agent.config;

import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class SettingsCatalogTest {

    @Test
    void acceptsEveryKnownSettingWithAValidValue() {
        Map<String, Object> ok = Map.of(
                "kiln.mode", "ec2",
                "kiln.state-dir", "/var/lib/kiln",
                "kiln.grpc.host", "0.0.0.0",
                "kiln.grpc.port", 7443,
                "kiln.tls.cert", "/etc/kiln/tls/agent.crt",
                "kiln.imds.endpoint", "http://127.0.0.1:1338",
                "kiln.imds.timeout", "45s",
                "micronaut.application.name", "kiln-agent");
        assertEquals(List.of(), SettingsCatalog.problems("/etc/kiln/agent.yml", ok));
    }

    @Test
    void namesAnUnknownKeyAndSuggestsTheNearestKnownOne() {
        List<String> problems = SettingsCatalog.problems("/etc/kiln/agent.yml", Map.of("kiln.grcp.port", 1));
        assertEquals(List.of("unknown setting 'kiln.grcp.port' in /etc/kiln/agent.yml; did you mean 'kiln.grpc.port'?"),
                problems);
    }

    @Test
    void listsKnownSettingsWhenNothingIsClose() {
        String problem = SettingsCatalog.problems("user data", Map.of("kiln.volumes.sources", "x")).get(0);
        assertTrue(problem.startsWith("unknown setting 'kiln.volumes.sources' in user data; known settings: kiln.mode"), problem);
    }

    @Test
    void namesTheKeyOfAnInvalidValueAndWhatIsExpected() {
        assertEquals(List.of("invalid value for setting 'kiln.grpc.port' in f.yml: 'seventy' is not a number "
                        + "(expected a TCP port 0-65535)"),
                SettingsCatalog.problems("f.yml", Map.of("kiln.grpc.port", "seventy")));
        assertEquals(List.of("invalid value for setting 'kiln.mode' in f.yml: must be 'local' or 'ec2', not 'cloud' "
                        + "(expected 'local' or 'ec2')"),
                SettingsCatalog.problems("f.yml", Map.of("kiln.mode", "cloud")));
        assertEquals(1, SettingsCatalog.problems("f.yml", Map.of("kiln.state-dir", "relative/dir")).size());
        assertEquals(1, SettingsCatalog.problems("f.yml", Map.of("kiln.imds.timeout", "soon")).size());
        assertEquals(1, SettingsCatalog.problems("f.yml", Map.of("kiln.imds.endpoint", "169.254.169.254")).size());
    }

    @Test
    void forwardPortsAreAListOfTcpPortsAndABadOneIsNamed() {
        assertEquals(List.of(), SettingsCatalog.problems("f.yml", Map.of("kiln.ssh.forward-ports", List.of(7888, 8888))));
        assertEquals(List.of(), SettingsCatalog.problems("f.yml", Map.of("kiln.ssh.forward-ports", List.of())));
        assertEquals(List.of(), SettingsCatalog.problems("f.yml", Map.of("kiln.ssh.forward-ports[1]", 8888)));
        assertEquals(List.of(), SettingsCatalog.environmentProblems(Map.of("KILN_SSH_FORWARD_PORTS", "7888,8888")));
        assertEquals(List.of("invalid value for setting 'kiln.ssh.forward-ports' in f.yml: 0 is not a TCP port 1-65535"
                        + " (expected a list of TCP ports 1-65535 such as [7888, 8888])"),
                SettingsCatalog.problems("f.yml", Map.of("kiln.ssh.forward-ports", List.of(7888, 0))));
        assertEquals(List.of("invalid value for setting 'kiln.ssh.forward-ports' in user data: 'http' is not a port number"
                        + " (expected a list of TCP ports 1-65535 such as [7888, 8888])"),
                SettingsCatalog.problems("user data", Map.of("kiln.ssh.forward-ports", List.of("http"))));
        assertEquals(1, SettingsCatalog.problems("f.yml", Map.of("kiln.ssh.forward-ports", List.of(Map.of("port", 1)))).size());
        assertEquals(1, SettingsCatalog.problems("f.yml", Map.of("kiln.ssh.forward-ports[0]", 70000)).size());
        assertEquals(1, SettingsCatalog.environmentProblems(Map.of("KILN_SSH_FORWARD_PORTS", "7888,x")).size());
    }

    @Test
    void acceptsCamelCaseKeysAsMicronautDoes() {
        assertEquals(List.of(), SettingsCatalog.problems("f.yml", Map.of("kiln.stateDir", "/srv/kiln")));
    }

    @Test
    void rejectsUnknownKilnEnvironmentVariablesAndIgnoresOthers() {
        Map<String, String> env = Map.of("KILN_GRPC_PORT", "7000", "KILN_GRPC_PROT", "7000", "HOME", "/root");
        List<String> problems = SettingsCatalog.environmentProblems(env);
        assertEquals(1, problems.size());
        assertTrue(problems.get(0).startsWith("unknown setting in environment variable KILN_GRPC_PROT"), problems.get(0));
    }

    @Test
    void checksTheValueOfAKnownEnvironmentVariable() {
        assertEquals(List.of("invalid value for setting 'kiln.grpc.port' in environment variable KILN_GRPC_PORT: "
                        + "70000 is out of range (expected a TCP port 0-65535)"),
                SettingsCatalog.environmentProblems(Map.of("KILN_GRPC_PORT", "70000")));
    }

    @Test
    void parsesDurationsInBothForms() {
        assertEquals(Duration.ofSeconds(30), SettingsCatalog.parseDuration("30s"));
        assertEquals(Duration.ofMinutes(5), SettingsCatalog.parseDuration("5m"));
        assertEquals(Duration.ofHours(2), SettingsCatalog.parseDuration("2h"));
        assertEquals(Duration.ofMillis(250), SettingsCatalog.parseDuration("250ms"));
        assertEquals(Duration.ofSeconds(90), SettingsCatalog.parseDuration("PT1M30S"));
        assertThrows(IllegalArgumentException.class, () -> SettingsCatalog.parseDuration("a while"));
    }

    @Test
    void acceptsBootMountsAsTheYamlParserPresentsThem() {
        Map<String, Object> settings = Map.of("kiln.volumes.attach-timeout", "90s", "kiln.volumes.mounts", List.of(
                Map.of("volume-id", "vol-0123456789abcdef0", "device", "/dev/sdf", "mount-point", "/mnt/sources",
                        "options", "ro,noatime,nodev,noexec,nosuid"),
                Map.of("volume-id", "vol-0fedcba9876543210", "mount-point", "/mnt/builds", "options", List.of("rw", "noexec"),
                        "format", true, "filesystem", "xfs", "label", "builds", "wait", "5m"),
                Map.of("mount-point", "/srv/vibes", "lower-dir", "/mnt/sources/vibes", "upper-dir", "/mnt/builds/vibes")));
        assertEquals(List.of(), SettingsCatalog.problems("/etc/kiln/agent.yml", settings));
        List<VolumeMountSettings> parsed = VolumeMountSettings.parse((List<?>) settings.get("kiln.volumes.mounts"));
        assertEquals(List.of("ro", "noatime", "nodev", "noexec", "nosuid"), parsed.get(0).options());
        assertTrue(parsed.get(1).format());
        assertEquals(Duration.ofMinutes(5), parsed.get(1).attachWait());
        assertEquals("/mnt/builds/vibes", parsed.get(2).upperDir());
    }

    @Test
    void namesTheIndexedKeyOfABadBootMount() {
        List<String> problems = SettingsCatalog.problems("f.yml", Map.of("kiln.volumes.mounts", List.of(
                Map.of("device", "/dev/sdf", "mount-point", "/mnt/a"),
                Map.of("volume-id", "vol-1", "mountpoint", "/mnt/b", "options", "ro,exec", "filesystem", "btrfs"))));
        assertEquals(List.of(
                "invalid value for setting 'kiln.volumes.mounts[1].volume-id' in f.yml: 'vol-1' is not an EBS volume id"
                        + " (expected an EBS volume id such as vol-0123456789abcdef0)",
                "unknown setting 'kiln.volumes.mounts[1].mountpoint' in f.yml; a mount has volume-id, device, mount-point,"
                        + " filesystem, options, format, label, lower-dir, upper-dir, wait, created-empty",
                "invalid value for setting 'kiln.volumes.mounts[1].options' in f.yml: unsupported mount option 'exec'"
                        + " (expected mount options from ro, rw, noexec, noatime, nodev, nosuid (nodev,nosuid always apply))",
                "invalid value for setting 'kiln.volumes.mounts[1].filesystem' in f.yml: 'btrfs' is not ext4 or xfs"
                        + " (expected 'ext4' or 'xfs')",
                "setting 'kiln.volumes.mounts[1].mount-point' in f.yml is missing (expected an absolute path)"),
                problems.stream().sorted(java.util.Comparator.comparing(p -> order(p))).toList());
    }

    private static int order(String problem) {
        for (String k : List.of("volume-id", "mountpoint", "options", "filesystem", "mount-point")) {
            if (problem.contains("[1]." + k + "'")) {
                return List.of("volume-id", "mountpoint", "options", "filesystem", "mount-point").indexOf(k);
            }
        }
        return 99;
    }

    @Test
    void requiresAVolumeOrBothOverlayLayers() {
        assertEquals(List.of("setting 'kiln.volumes.mounts[0]' in f.yml needs volume-id or device (or lower-dir and"
                        + " upper-dir for an overlay)"),
                SettingsCatalog.problems("f.yml", Map.of("kiln.volumes.mounts", List.of(Map.of("mount-point", "/data")))));
        assertEquals(List.of("setting 'kiln.volumes.mounts[0]' in f.yml is an overlay and needs both lower-dir and upper-dir",
                        "setting 'kiln.volumes.mounts[0].format' in f.yml does not apply to an overlay (lower-dir/upper-dir)"),
                SettingsCatalog.problems("f.yml", Map.of("kiln.volumes.mounts", List.of(
                        Map.of("mount-point", "/srv/t", "lower-dir", "/mnt/s", "format", true)))));
        assertEquals(List.of("setting 'kiln.volumes.mounts' in f.yml must be a list of mounts (each with mount-point and"
                        + " volume-id or device, or lower-dir and upper-dir)"),
                SettingsCatalog.problems("f.yml", Map.of("kiln.volumes.mounts", "vol-0123456789abcdef0")));
    }

    @Test
    void createdEmptyVouchesForAVolumeIdAndNeverForAnOverlay() {
        List<?> mounts = List.of(Map.of("volume-id", "vol-0fedcba9876543210", "device", "/dev/sdg", "mount-point",
                "/mnt/builds", "format", true, "created-empty", true));
        assertEquals(List.of(), SettingsCatalog.problems("user data", Map.of("kiln.volumes.mounts", mounts)));
        assertTrue(VolumeMountSettings.parse(mounts).get(0).createdEmpty());
        assertFalse(VolumeMountSettings.parse(List.of(Map.of("volume-id", "vol-0fedcba9876543210", "mount-point", "/data")))
                .get(0).createdEmpty(), "no claim unless the controller makes it");
        assertEquals(List.of("setting 'kiln.volumes.mounts[0].created-empty' in user data needs volume-id: it vouches for"
                        + " that EBS volume only"),
                SettingsCatalog.problems("user data", Map.of("kiln.volumes.mounts", List.of(
                        Map.of("device", "/dev/loop3", "mount-point", "/data", "created-empty", true)))));
        assertEquals(List.of("setting 'kiln.volumes.mounts[0].created-empty' in user data does not apply to an overlay"
                        + " (lower-dir/upper-dir)"),
                SettingsCatalog.problems("user data", Map.of("kiln.volumes.mounts", List.of(Map.of("mount-point", "/srv/t",
                        "lower-dir", "/mnt/s", "upper-dir", "/mnt/b/t", "created-empty", true)))));
        assertEquals(List.of("invalid value for setting 'kiln.volumes.mounts[0].created-empty' in user data: 'yes' is not"
                        + " true or false (expected true or false (kiln launch writes it for a volume it created empty))"),
                SettingsCatalog.problems("user data", Map.of("kiln.volumes.mounts", List.of(Map.of("volume-id",
                        "vol-0fedcba9876543210", "mount-point", "/data", "created-empty", "yes")))));
    }

    @Test
    void boundsTheWholeDeviceReadWithANonNegativeDuration() {
        assertEquals(List.of(), SettingsCatalog.problems("f.yml", Map.of("kiln.volumes.zero-read-timeout", "0s")));
        assertEquals(List.of(), SettingsCatalog.environmentProblems(Map.of("KILN_VOLUMES_ZERO_READ_TIMEOUT", "2h")));
        assertEquals(List.of("invalid value for setting 'kiln.volumes.zero-read-timeout' in f.yml: 'PT-1H' is negative"
                        + " (expected a duration such as 1h (0s: never read a whole device))"),
                SettingsCatalog.problems("f.yml", Map.of("kiln.volumes.zero-read-timeout", "PT-1H")));
    }

    @Test
    void checksFlattenedIndexedMountKeysToo() {
        assertEquals(List.of(), SettingsCatalog.problems("p", Map.of("kiln.volumes.mounts[0].mount-point", "/data",
                "kiln.volumes.mounts[0].device", "/dev/sdf")));
        assertEquals(List.of("invalid value for setting 'kiln.volumes.mounts[2].format' in p: 'yes' is not true or false"
                        + " (expected true or false)"),
                SettingsCatalog.problems("p", Map.of("kiln.volumes.mounts[2].format", "yes")));
    }

    @Test
    void bootMountsCannotComeFromTheEnvironment() {
        assertEquals(List.of("invalid value for setting 'kiln.volumes.mounts' in environment variable KILN_VOLUMES_MOUNTS:"
                        + " a single value; boot mounts are a list, set in agent.yml or user data (expected a list of mounts"
                        + " in agent.yml or user data)"),
                SettingsCatalog.environmentProblems(Map.of("KILN_VOLUMES_MOUNTS", "x")));
        assertEquals(List.of(), SettingsCatalog.environmentProblems(Map.of("KILN_VOLUMES_ATTACH_TIMEOUT", "5m",
                "KILN_VOLUMES_SYSFS_ROOT", "/sys")));
    }

    private static Map<String, Object> userData(String yaml) {
        return dev.kiln.agent.instance.UserData.settings(yaml).orElseThrow();
    }

    @Test
    void acceptsTheBootBuildShapeTheControllerWrites() {
        assertEquals(List.of(), SettingsCatalog.problems("EC2 user data", userData("""
                kiln:
                  boot-build:
                    work-tree: /mnt/builds/vibes
                    profiles: [flac, opus]
                    profiles-dir: /mnt/sources/profiles
                    labels: {trigger: boot}
                """)));
        assertEquals(List.of(), SettingsCatalog.problems("EC2 user data", userData("""
                kiln:
                  boot-build:
                    work-tree: /mnt/builds/vibes
                    command: ["make", "all"]
                """)));
    }

    @Test
    void bootBuildProblemsNameTheKey() {
        assertEquals(List.of("setting 'kiln.boot-build.work-tree' in u is missing: a boot build needs its work tree (an"
                        + " absolute path such as /mnt/builds/vibes)"),
                SettingsCatalog.problems("u", userData("kiln:\n  boot-build:\n    profiles: [flac]\n")));
        assertEquals(List.of("invalid value for setting 'kiln.boot-build.work-tree' in u: 'builds/vibes' is not an absolute"
                        + " path other than / (expected an absolute path)"),
                SettingsCatalog.problems("u", userData("kiln:\n  boot-build:\n    work-tree: builds/vibes\n")));
        assertEquals(List.of("unknown setting 'kiln.boot-build.profile' in u; kiln.boot-build has work-tree, profiles,"
                        + " profiles-dir, command, labels"),
                SettingsCatalog.problems("u", userData("kiln:\n  boot-build:\n    work-tree: /w\n    profile: flac\n")));
        assertEquals(List.of("invalid value for setting 'kiln.boot-build.profiles' in u: profile name '../x' must be 1-64"
                        + " letters, digits, '.', '_' or '-', starting with a letter or digit (expected a list of profile"
                        + " names such as [flac, opus])"),
                SettingsCatalog.problems("u", userData("kiln:\n  boot-build:\n    work-tree: /w\n    profiles: [../x]\n")));
        assertEquals(List.of("setting 'kiln.boot-build.command' in u must be a list (an argv list such as [\"make\", \"all\"])"),
                SettingsCatalog.problems("u", userData("kiln:\n  boot-build:\n    work-tree: /w\n    command: make all\n")));
        assertEquals(List.of("settings 'kiln.boot-build.command' and 'kiln.boot-build.profiles' in u contradict each other:"
                        + " profiles are for a tup build, command replaces tup; set one"),
                SettingsCatalog.problems("u", userData("kiln:\n  boot-build:\n    work-tree: /w\n    command: [make]\n"
                        + "    profiles: [flac]\n")));
        assertEquals(List.of("setting 'kiln.boot-build.labels.kiln:boot' in u: labels starting with kiln: are the agent's own"),
                SettingsCatalog.problems("u", userData("kiln:\n  boot-build:\n    work-tree: /w\n    labels: {'kiln:boot': x}\n")));
        assertEquals(List.of("setting 'kiln.boot-build' in u must be a map with work-tree, profiles, profiles-dir, command,"
                        + " labels (work-tree required)"),
                SettingsCatalog.problems("u", Map.of("kiln.boot-build", "yes")));
    }

    @Test
    void everyRecordComponentIsASettingCheckedByItsRecordsRules() {
        for (String key : List.of("kiln.instance-id", "kiln.boot-script", "kiln.lease.fallback-ttl", "kiln.ssh.forward-ports",
                "kiln.snapshots.command-timeout", "kiln.volumes.zero-read-timeout")) {
            assertTrue(SettingsCatalog.find(key).isPresent(), key);
        }
        assertEquals(List.of("invalid value for setting 'kiln.lease.rebalance' in f.yml: 'sometimes' is not one of warn,"
                        + " drain (expected 'warn' or 'drain')"),
                SettingsCatalog.problems("f.yml", Map.of("kiln.lease.rebalance", "sometimes")));
        assertEquals(List.of("invalid value for setting 'kiln.lease.fallback-ttl' in environment variable"
                        + " KILN_LEASE_FALLBACK_TTL: '0s' is not a positive duration (expected a positive duration such as 30m)"),
                SettingsCatalog.environmentProblems(Map.of("KILN_LEASE_FALLBACK_TTL", "0s")));
        assertEquals(List.of("invalid value for setting 'kiln.boot-script' in u: empty (leave kiln.boot-script out for no"
                        + " boot script) (expected a shell script's text)"),
                SettingsCatalog.problems("u", Map.of("kiln.boot-script", "  ")));
        assertEquals(List.of("invalid value for setting 'kiln.ssh.owner-keys' in u: 'keys.txt' is neither an absolute path"
                        + " nor authorized_keys text (expected an authorized_keys file path or its text)"),
                SettingsCatalog.problems("u", Map.of("kiln.ssh.owner-keys", "keys.txt")));
        assertEquals(List.of("invalid value for setting 'kiln.snapshots.ec2-endpoint' in u: 'ftp://x' is not an http(s) URL"
                        + " (expected an http:// URL)"),
                SettingsCatalog.problems("u", Map.of("kiln.snapshots.ec2-endpoint", "ftp://x")));
        assertEquals(List.of("invalid value for setting 'kiln.ssh.enabled' in u: 'yes' is not true or false"
                        + " (expected true or false)"),
                SettingsCatalog.problems("u", Map.of("kiln.ssh.enabled", "yes")));
        assertEquals(List.of(), SettingsCatalog.problems("u", Map.of("kiln.lease.backstop", "command",
                "kiln.lease.backstop-command", "/usr/local/bin/end", "kiln.ssh.enabled", true, "kiln.ssh.port", 22)));
    }

    @Test
    void aRecordRefusesTheValuesTheCatalogRefusesWithTheSameWords() {
        SettingException port = assertThrows(SettingException.class, () -> new GrpcSettings("127.0.0.1", 70000));
        assertEquals("invalid value for setting 'kiln.grpc.port': 70000 is out of range (expected a TCP port 0-65535)",
                port.getMessage());
        SettingException ttl = assertThrows(SettingException.class, () -> new LeaseSettings(null, Duration.ofHours(12),
                false, Duration.ZERO, null, "warn", Duration.ofSeconds(100), null, null, Duration.ofMinutes(10), null,
                Duration.ofSeconds(5)));
        assertEquals("invalid value for setting 'kiln.lease.fallback-ttl': '0s' is not a positive duration"
                + " (expected a positive duration such as 30m)", ttl.getMessage());
        SettingException forward = assertThrows(SettingException.class, () -> new SshSettings(true, null, null, null,
                null, null, null, null, null, List.of(7888, 0)));
        assertEquals("invalid value for setting 'kiln.ssh.forward-ports': 0 is not a TCP port 1-65535"
                + " (expected a list of TCP ports 1-65535 such as [7888, 8888])", forward.getMessage());
        SettingException keys = assertThrows(SettingException.class, () -> new SshSettings(true, null, null, null,
                null, null, "keys.txt", null, null, null));
        assertEquals("invalid value for setting 'kiln.ssh.owner-keys': 'keys.txt' is neither an absolute path nor"
                + " authorized_keys text (expected an authorized_keys file path or its text)", keys.getMessage());
        // Unset (null) components are not checked; a record of defaults is valid.
        assertEquals(22, new SshSettings(true, null, 22, null, null, null, null, null, null, null).port());
    }

    @Test
    void aComponentWithoutItsRuleStopsTheCatalogAtOnce() {
        record TwoParts(String host, int port) {
        }
        SettingRules rules = SettingRules.of(TwoParts.class, "kiln.two")
                .add("host", "a host", SettingCheck.TEXT, SettingCheck::filled);
        IllegalStateException e = assertThrows(IllegalStateException.class, rules::settings);
        assertEquals("TwoParts's component 2 is port, but its rule is for (none): give each component a rule, in order",
                e.getMessage());
        assertEquals(List.of("kiln.two.host", "kiln.two.port"), rules.add("port", "a port", SettingCheck.NUMBER,
                SettingCheck.range(0, 65535, "is out of range")).settings().stream().map(SettingsCatalog.Setting::key).toList());
    }

    @Test
    void theContextBindsTheRecordsAndShowsTheirMessageOnABadValue() {
        // Properties set on the context directly are no source the catalog checks, as -D properties are not.
        try (io.micronaut.context.ApplicationContext context = io.micronaut.context.ApplicationContext.builder()
                .deduceEnvironment(false).properties(Map.of("kiln.grpc.port", 7444, "kiln.lease.rebalance", " drain ")).start()) {
            assertEquals(7444, context.getBean(GrpcSettings.class).port());
            assertEquals(" drain ", context.getBean(LeaseSettings.class).rebalance());
        }
        try (io.micronaut.context.ApplicationContext context = io.micronaut.context.ApplicationContext.builder()
                .deduceEnvironment(false).properties(Map.of("kiln.lease.rebalance", "sometimes")).start()) {
            RuntimeException e = assertThrows(RuntimeException.class, () -> context.getBean(LeaseSettings.class));
            Throwable cause = e;
            while (!(cause instanceof SettingException) && cause.getCause() != null) {
                cause = cause.getCause();
            }
            assertEquals("invalid value for setting 'kiln.lease.rebalance': 'sometimes' is not one of warn, drain"
                    + " (expected 'warn' or 'drain')", cause.getMessage());
        }
    }

    @Test
    void everySettingIsInTheDocsTables() throws java.io.IOException {
        java.nio.file.Path docs = java.nio.file.Path.of("..", "docs");
        List<String> rows = new java.util.ArrayList<>();
        for (String page : List.of("agent.md", "serving.md")) {
            java.nio.file.Files.readAllLines(docs.resolve(page)).stream().filter(l -> l.startsWith("| `kiln.")).forEach(rows::add);
        }
        for (SettingsCatalog.Setting setting : SettingsCatalog.all()) {
            String key = setting.key();
            String section = key.substring(0, key.lastIndexOf('.'));
            String last = key.substring(key.lastIndexOf('.') + 1);
            // A row may name several keys of one section: `kiln.volumes.sysfs-root` / `dev-root`.
            assertTrue(rows.stream().anyMatch(r -> r.startsWith("| `" + key + "`")
                            || r.startsWith("| `" + section + ".") && r.split("\\|")[1].contains("`" + last + "`")),
                    key + " has no row in docs/agent.md or docs/serving.md");
        }
    }
}
