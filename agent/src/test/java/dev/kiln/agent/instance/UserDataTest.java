package dev.kiln.agent.instance;

import org.junit.jupiter.api.Test;

import java.util.Map;
import java.util.Optional;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class UserDataTest {

    @Test
    void flattensKilnSettings() {
        Optional<Map<String, Object>> s = UserData.settings("kiln:\n  name: worker-1\n  grpc:\n    port: 7443\n");
        assertEquals(Map.of("kiln.name", "worker-1", "kiln.grpc.port", 7443), s.orElseThrow());
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
        assertEquals(Map.of("kiln.volumes.mounts", java.util.List.of(Map.of("volume-id", "vol-0123456789abcdef0",
                "mount-point", "/data", "format", true))), s);
        assertEquals(java.util.List.of(), dev.kiln.agent.config.SettingsCatalog.problems("EC2 user data", s));
    }
}
