package dev.kiln.agent.config;

import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
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
}
