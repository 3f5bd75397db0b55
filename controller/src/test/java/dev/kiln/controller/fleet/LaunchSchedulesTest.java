package dev.kiln.controller.fleet;

import dev.kiln.controller.ExitCodes;
import dev.kiln.controller.KilnException;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** A template's schedule, as config.yml gives it, becomes the agent's kiln.schedules or a clear error. */
class LaunchSchedulesTest {

    @Test
    void aTemplatesSchedulesBecomeTheAgentsSetting() {
        List<Map<String, Object>> out = LaunchSchedules.of("notes", List.of(Map.of("role", "data", "every", "1d", "at", "03:00",
                "keep", 7, "pre", "sync")));
        assertEquals(List.of(Map.of("role", "data", "every", "86400s", "at", "03:00", "keep", 7, "pre", "sync")), out);
        assertEquals(List.of(Map.of("role", "data", "every", "21600s", "keep", 0)),
                LaunchSchedules.of("notes", Map.of("role", "data", "every", "6h")), "one map is a list of one");
        assertEquals(List.of(), LaunchSchedules.of("notes", null));
    }

    @Test
    void aBadEntryIsAConfigurationErrorNamingTheTemplateAndTheField() {
        KilnException at = assertThrows(KilnException.class, () -> LaunchSchedules.of("notes",
                List.of(Map.of("role", "data", "every", "24h", "at", 180))));
        assertEquals(ExitCodes.CONFIG, at.exitCode());
        assertTrue(at.getMessage().startsWith("template 'notes': schedule[0]: at must be a quoted time of day HH:MM"),
                at.getMessage());
        KilnException unknown = assertThrows(KilnException.class, () -> LaunchSchedules.of("notes",
                List.of(Map.of("role", "data", "every", "24h"), Map.of("role", "logs", "every", "1h", "daily", true))));
        assertTrue(unknown.getMessage().contains("schedule[1] has an unknown field 'daily'"), unknown.getMessage());
        KilnException every = assertThrows(KilnException.class, () -> LaunchSchedules.of("notes",
                List.of(Map.of("role", "data", "every", "soon"))));
        assertTrue(every.getMessage().contains("every 'soon' is not a duration"), every.getMessage());
    }
}
