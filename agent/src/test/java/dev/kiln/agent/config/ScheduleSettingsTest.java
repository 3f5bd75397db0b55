package dev.kiln.agent.config;

import dev.kiln.agent.schedule.ScheduleSpec;
import org.junit.jupiter.api.Test;
import org.yaml.snakeyaml.Yaml;

import java.time.Duration;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** kiln.schedules as agent.yml or user data gives it: checked at start-up, each problem naming its entry. */
class ScheduleSettingsTest {

    static List<String> problems(String yaml) {
        Map<?, ?> doc = new Yaml().load(yaml);
        return SettingsCatalog.problems("agent.yml", SettingsCatalog.flatten(doc));
    }

    @Test
    void aWellFormedListIsAcceptedAndRead() {
        String yaml = "kiln:\n  schedules:\n    - {role: data, every: 24h, at: \"03:00\", keep: 7, pre: \"sync\"}\n";
        assertEquals(List.of(), problems(yaml));
        Map<?, ?> kiln = (Map<?, ?>) ((Map<?, ?>) new Yaml().load(yaml)).get("kiln");
        List<ScheduleSpec> specs = ScheduleSettings.parse((List<?>) kiln.get("schedules"));
        assertEquals(List.of(new ScheduleSpec("data", Duration.ofHours(24), "03:00", 7, "sync", "")), specs);
    }

    @Test
    void anUnquotedTimeOfDayIsNamedWithTheFix() {
        List<String> p = problems("kiln:\n  schedules:\n    - {role: data, every: 24h, at: 3:00}\n");
        assertEquals(1, p.size(), p.toString());
        assertTrue(p.get(0).contains("'kiln.schedules[0]'") && p.get(0).contains("at must be quoted, e.g. at: \"03:00\""),
                p.get(0));
    }

    @Test
    void eachBadEntryIsNamedByItsIndexAndField() {
        List<String> p = problems(String.join("\n", "kiln:", "  schedules:",
                "    - {role: data, every: 500ms}",
                "    - {role: logs, every: 1h, keep: -1}",
                "    - {role: web, every: 1h, hourly: true}",
                "    - {every: 1h}", ""));
        assertEquals(4, p.size(), p.toString());
        assertTrue(p.get(0).contains("kiln.schedules[0]") && p.get(0).contains("every must be at least 1s"), p.get(0));
        assertTrue(p.get(1).contains("kiln.schedules[1]") && p.get(1).contains("keep must be 0 (keep all) or more"), p.get(1));
        assertTrue(p.get(2).contains("kiln.schedules[2]") && p.get(2).contains("unknown field 'hourly'"), p.get(2));
        assertTrue(p.get(3).contains("kiln.schedules[3]") && p.get(3).contains("role and every are required"), p.get(3));
    }

    @Test
    void snapshotSettingsAreKnownAndChecked() {
        assertEquals(List.of(), problems("kiln:\n  snapshots:\n    store: /var/lib/kiln-fleet/snapshots\n"
                + "    ec2-endpoint: http://127.0.0.1:5000\n    catch-up: 0s\n"));
        List<String> p = problems("kiln:\n  snapshots:\n    store: relative/path\n");
        assertEquals(1, p.size(), p.toString());
        assertTrue(p.get(0).contains("kiln.snapshots.store"), p.get(0));
    }
}
