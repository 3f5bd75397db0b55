package dev.kiln.agent;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Runs the real agent as a separate process (as systemd would) with bad settings and checks it
 * stops at once with exit code 78 and a message naming the setting.
 */
class AgentStartupRefusalTest {

    @TempDir
    Path dir;

    record Result(int exitCode, String output) {
    }

    private Result start(String agentYml, Map<String, String> extraEnv, String... jvmOptions)
            throws IOException, InterruptedException {
        Path yml = dir.resolve("agent.yml");
        Files.writeString(yml, agentYml);
        String java = ProcessHandle.current().info().command().orElse("java");
        List<String> command = new java.util.ArrayList<>(List.of(java));
        command.addAll(List.of(jvmOptions));
        command.addAll(List.of("-cp", System.getProperty("java.class.path"), Main.class.getName()));
        ProcessBuilder pb = new ProcessBuilder(command).redirectErrorStream(true);
        pb.environment().keySet().removeIf(k -> k.startsWith("KILN_") || k.startsWith("MICRONAUT_"));
        pb.environment().put("MICRONAUT_CONFIG_FILES", yml.toString());
        pb.environment().putAll(extraEnv);
        Process p = pb.start();
        if (!p.waitFor(60, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            throw new AssertionError("agent did not stop on bad settings within 60 s");
        }
        return new Result(p.exitValue(), new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8));
    }

    @Test
    void stopsOnAMisspelledKeyInTheConfigFileNamingIt() throws Exception {
        Result r = start("kiln:\n  mode: local\n  grcp:\n    port: 7443\n", Map.of());
        assertEquals(AgentLauncher.EXIT_CONFIG, r.exitCode(), r.output());
        assertTrue(r.output().contains("unknown setting 'kiln.grcp.port' in " + dir.resolve("agent.yml")
                + "; did you mean 'kiln.grpc.port'?"), r.output());
    }

    @Test
    void stopsOnAnInvalidModeNamingTheKey() throws Exception {
        Result r = start("kiln:\n  mode: cloud\n", Map.of());
        assertEquals(AgentLauncher.EXIT_CONFIG, r.exitCode(), r.output());
        assertTrue(r.output().contains("invalid value for setting 'kiln.mode'"), r.output());
    }

    @Test
    void stopsOnAnUnknownKilnEnvironmentVariable() throws Exception {
        Result r = start("kiln:\n  mode: local\n", Map.of("KILN_GRPC_PROT", "1"));
        assertEquals(AgentLauncher.EXIT_CONFIG, r.exitCode(), r.output());
        assertTrue(r.output().contains("environment variable KILN_GRPC_PROT"), r.output());
    }

    @Test
    void refusesToServeWithoutTls() throws Exception {
        Result r = start("kiln:\n  mode: local\n  grpc:\n    port: 0\n", Map.of());
        assertEquals(AgentLauncher.EXIT_CONFIG, r.exitCode(), r.output());
        assertTrue(r.output().contains("kiln.tls.cert is not set; the gRPC server requires mutual TLS"), r.output());
    }

    @Test
    void namesTheSettingWhoseFileCannotBeRead() throws Exception {
        Result r = start("kiln:\n  mode: local\n  grpc:\n    port: 0\n  tls:\n    cert: " + dir.resolve("missing.crt")
                + "\n    key: " + dir.resolve("missing.key") + "\n    ca: " + dir.resolve("ca.crt") + "\n", Map.of());
        assertEquals(AgentLauncher.EXIT_CONFIG, r.exitCode(), r.output());
        assertTrue(r.output().contains("kiln.tls.cert: cannot read " + dir.resolve("missing.crt")), r.output());
    }

    @Test
    void environmentOverridesTheFileAndIsValidatedToo() throws Exception {
        // The file is fine; the environment's port is not, and it is what would be used.
        Result r = start("kiln:\n  mode: local\n  grpc:\n    port: 7443\n", Map.of("KILN_GRPC_PORT", "99999"));
        assertEquals(AgentLauncher.EXIT_CONFIG, r.exitCode(), r.output());
        assertTrue(r.output().contains("KILN_GRPC_PORT: 99999 is out of range"), r.output());
        assertTrue(List.of(r.output().split("\n")).stream().noneMatch(l -> l.contains("listening")), r.output());
    }

    @Test
    void aSystemPropertyIsCheckedByItsSettingsRecord() throws Exception {
        // -D properties are no settings source the start-up check reads; binding the record checks them.
        Result r = start("kiln:\n  mode: local\n", Map.of(), "-Dkiln.state-dir=relative/kiln");
        assertEquals(AgentLauncher.EXIT_CONFIG, r.exitCode(), r.output());
        assertTrue(r.output().contains("configuration error: invalid value for setting 'kiln.state-dir': 'relative/kiln'"
                + " is not an absolute path (expected an absolute path) (a -D option, set in AGENT_JAVA_OPTS)"), r.output());
        assertFalse(r.output().contains("\tat "), "no stack trace: " + r.output());
    }

    @Test
    void stopsOnABadBootMountNamingTheIndexedKey() throws Exception {
        Result r = start("kiln:\n  mode: local\n  volumes:\n    mounts:\n      - device: /dev/sdf\n        mount-point: /data\n"
                + "        options: ro,suid\n", Map.of());
        assertEquals(AgentLauncher.EXIT_CONFIG, r.exitCode(), r.output());
        assertTrue(r.output().contains("invalid value for setting 'kiln.volumes.mounts[0].options' in " + dir.resolve("agent.yml")
                + ": unsupported mount option 'suid'"), r.output());
    }

    @Test
    void stopsOnABadBootBuildInTheConfigFileNamingTheKey() throws Exception {
        Result r = start("kiln:\n  mode: local\n  boot-build:\n    work-tree: /srv/vibes\n    profiles: [flac]\n"
                + "    command: [make]\n    labels: {trigger: boot}\n    workdir: /x\n", Map.of());
        assertEquals(AgentLauncher.EXIT_CONFIG, r.exitCode(), r.output());
        assertTrue(r.output().contains("unknown setting 'kiln.boot-build.workdir' in " + dir.resolve("agent.yml")
                + "; kiln.boot-build has work-tree, profiles, profiles-dir, command, labels"), r.output());
        assertTrue(r.output().contains("settings 'kiln.boot-build.command' and 'kiln.boot-build.profiles' in "
                + dir.resolve("agent.yml") + " contradict each other"), r.output());
    }

    @Test
    void stopsOnADuplicateServicePortNamingBothEntries() throws Exception {
        Result r = start("kiln:\n  mode: local\n  services:\n    - {name: web, port: 8000, command: make serve}\n"
                + "    - {name: docs, port: 8000}\n", Map.of());
        assertEquals(AgentLauncher.EXIT_CONFIG, r.exitCode(), r.output());
        assertTrue(r.output().contains("setting 'kiln.services[1].port' in " + dir.resolve("agent.yml")
                + ": port 8000 is already declared by kiln.services[0] (web); give each service its own port"), r.output());
    }
}
