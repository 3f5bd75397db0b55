package dev.kiln.agent.instance;

import dev.kiln.agent.config.SettingsCatalog;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Map;
import java.util.Optional;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class UserDataTest {

    @Test
    void flattensKilnSettings() {
        Optional<Map<String, Object>> s = UserData.settings("kiln:\n  name: worker-1\n  grpc:\n    port: 7443\n");
        assertEquals(Map.of("kiln.name", "worker-1", "kiln.grpc.port", "7443"), s.orElseThrow());
        assertEquals(List.of(), SettingsCatalog.problems("EC2 user data", s.orElseThrow()));
    }

    @Test
    void ignoresUserDataThatBelongsToSomeoneElse() {
        assertTrue(UserData.settings("#!/bin/bash\necho hi\n").isEmpty());
        assertTrue(UserData.settings("#cloud-config\npackages: [htop]\n").isEmpty());
        assertTrue(UserData.settings("   \n").isEmpty());
        assertTrue(UserData.settings("other: 1\n").isEmpty());
    }

    @Test
    void reportsBrokenYamlInsteadOfIgnoringIt() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> UserData.settings("kiln:\n  grpc: [unclosed\n"));
        assertTrue(e.getMessage().startsWith("EC2 user data is not valid YAML"), e.getMessage());
    }

    @Test
    void keepsBootMountsAsAListOfMaps() {
        Map<String, Object> s = UserData.settings("""
                kiln:
                  volumes:
                    mounts:
                      - volume-id: vol-0123456789abcdef0
                        mount-point: /data
                        format: true
                """).orElseThrow();
        assertEquals(Map.of("kiln.volumes.mounts", List.of(Map.of("volume-id", "vol-0123456789abcdef0",
                "mount-point", "/data", "format", "true"))), s);
        assertEquals(List.of(), SettingsCatalog.problems("EC2 user data", s));
    }

    @Test
    void readsYaml11BooleansNumbersAndDatesAsTheTextTheyAre() {
        Map<String, Object> s = UserData.settings("""
                kiln:
                  name: no
                  boot-build:
                    work-tree: /w
                    profiles: [yes, on, off, y, 0x10, 1e3, 0o17, 1_000, .inf, 2024-01-01, 12:30:00, <<]
                    labels: {no: on, 017: ~, null: null, empty: }
                """).orElseThrow();
        assertEquals(Map.of("kiln.name", "no", "kiln.boot-build.work-tree", "/w",
                "kiln.boot-build.profiles", List.of("yes", "on", "off", "y", "0x10", "1e3", "0o17", "1_000", ".inf",
                        "2024-01-01", "12:30:00", "<<"),
                "kiln.boot-build.labels.no", "on", "kiln.boot-build.labels.017", "",
                "kiln.boot-build.labels.null", "", "kiln.boot-build.labels.empty", ""), nullsAsEmpty(s));
    }

    @Test
    void aSwitchIsTrueOrFalseNotAYaml11Word() {
        Map<String, Object> s = UserData.settings("kiln:\n  ssh:\n    enabled: yes\n  lease:\n    forever: false\n").orElseThrow();
        assertEquals(List.of("invalid value for setting 'kiln.ssh.enabled' in EC2 user data: 'yes' is not true or false"
                + " (expected true or false)"), SettingsCatalog.problems("EC2 user data", s));
    }

    @Test
    void refusesAliasesOfMapsAndListsSoABillionLaughsCannotExpand() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> UserData.settings("""
                kiln:
                  a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]
                  b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
                  c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
                  d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
                  e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
                  f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
                  g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]
                  h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]
                  name: [*h, *h, *h, *h, *h, *h, *h, *h, *h]
                """));
        assertEquals("EC2 user data is not valid YAML: Number of aliases for non-scalar nodes exceeds the specified max=0",
                e.getMessage());
        IllegalArgumentException recursive = assertThrows(IllegalArgumentException.class,
                () -> UserData.settings("kiln: &k\n  name: x\n  self: *k\n"));
        assertTrue(recursive.getMessage().startsWith("EC2 user data is not valid YAML"), recursive.getMessage());
    }

    @Test
    void refusesCustomAndTypedTags() {
        for (String value : List.of("!!javax.script.ScriptEngineManager [!!java.net.URLClassLoader [[!!java.net.URL"
                        + " [\"http://127.0.0.1/\"]]]]", "!kiln x", "!<tag:example.com,2024:x> y", "!!binary aGk=",
                "!!int 5", "!!bool yes", "!!timestamp 2024-01-01", "!!set {a}")) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> UserData.settings("kiln:\n  name: " + value + "\n"), value);
            assertTrue(e.getMessage().startsWith("EC2 user data is not valid YAML: ")
                    && e.getMessage().contains("at line 2, column 9"), e.getMessage());
        }
        assertEquals(Map.of("kiln.name", "5"), UserData.settings("kiln:\n  name: !!str 5\n").orElseThrow());
    }

    @Test
    void refusesADuplicateKeyInsteadOfLettingTheLastWin() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> UserData.settings("kiln:\n  mode: ec2\n  grpc:\n    port: 7443\n  mode: local\n"));
        assertEquals("EC2 user data is not valid YAML: found duplicate key mode at line 5, column 3 (while constructing"
                + " a mapping)", e.getMessage());
    }

    @Test
    void refusesADocumentFarBeyondEc2sLimit() {
        String big = "kiln:\n  name: '" + "x".repeat(UserData.MAX_CODE_POINTS) + "'\n";
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> UserData.settings(big));
        assertTrue(e.getMessage().startsWith("EC2 user data is not valid YAML: The incoming YAML document exceeds the limit"),
                e.getMessage());
    }

    @Test
    void keepsTheTrailingNewlinesOfTheLastValue() {
        assertEquals(Map.of("kiln.name", "a\n\n"), UserData.settings("kiln:\n  name: |+\n    a\n\n").orElseThrow());
    }

    @Test
    void namesTheKeyOfASectionGivenAValueOrAList() {
        assertEquals(List.of("setting 'kiln.grpc' in EC2 user data must be a map (of host, port), not '7443'"),
                SettingsCatalog.problems("EC2 user data", UserData.settings("kiln:\n  grpc: 7443\n").orElseThrow()));
        assertEquals(List.of("setting 'kiln.lease' in EC2 user data must be a map (of ttl, max-lifetime, forever,"
                        + " fallback-ttl, idle-timeout, rebalance, drain-budget, backstop, backstop-command, backstop-grace,"
                        + " power-off, imds-poll), not a list"),
                SettingsCatalog.problems("EC2 user data", UserData.settings("kiln:\n  lease: [2h]\n").orElseThrow()));
        assertTrue(SettingsCatalog.problems("EC2 user data", UserData.settings("kiln: ec2\n").orElseThrow()).get(0)
                .startsWith("setting 'kiln' in EC2 user data must be a map (of mode, state-dir, name, instance-id,"
                        + " boot-script, grpc, tls, imds,"), "kiln");
        assertEquals(List.of("setting 'kiln.grpc.port' in EC2 user data must be a single value (a TCP port 0-65535)"),
                SettingsCatalog.problems("EC2 user data", UserData.settings("kiln:\n  grpc:\n    port: [1, 2]\n").orElseThrow()));
    }

    /** The settings with null values as "" (Map.of takes no null). */
    private static Map<String, Object> nullsAsEmpty(Map<String, Object> s) {
        Map<String, Object> out = new java.util.HashMap<>();
        s.forEach((k, v) -> out.put(k, v == null ? "" : v));
        return out;
    }
}
