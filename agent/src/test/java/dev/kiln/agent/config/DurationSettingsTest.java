package dev.kiln.agent.config;

import dev.kiln.agent.startup.AgentDefaults;
import io.micronaut.context.ApplicationContext;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The agent reads every duration setting as the CLI reads its options: {@code 1h30m} is a lease,
 * checked by SettingsCatalog and bound into the settings records alike.
 */
class DurationSettingsTest {

    @Test
    void settingsTakeUnitsInARow() {
        Map<String, Object> settings = Map.of("kiln.lease.ttl", "1h30m", "kiln.lease.idle-timeout", "1d12h",
                "kiln.volumes.freeze-lease", "1m30s");
        assertTrue(SettingsCatalog.isPositiveDuration("1h30m"));
        try (ApplicationContext context = AgentDefaults.contextBuilder().properties(settings).start()) {
            LeaseSettings lease = context.getBean(LeaseSettings.class);
            assertEquals(Duration.ofMinutes(90), lease.ttl());
            assertEquals(Duration.ofHours(36), lease.idleTimeout());
            assertEquals(Duration.ofSeconds(90), context.getBean(VolumeSettings.class).freezeLease());
        }
    }

    @Test
    void aBadDurationSettingIsRefusedWithTheSharedMessage() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> SettingsCatalog.parseDuration("2 hours"));
        assertEquals("'2 hours' is not a duration; write e.g. 30s, 5m, 1h30m or 2d", e.getMessage());
    }
}
