package dev.kiln.e2e;

import dev.kiln.agent.config.ScheduleSettings;
import dev.kiln.agent.config.SettingsCatalog;
import dev.kiln.agent.instance.UserData;
import dev.kiln.agent.schedule.ScheduleSpec;
import dev.kiln.controller.fleet.AgentUserData;
import dev.kiln.controller.fleet.LaunchSchedules;
import dev.kiln.controller.pki.FleetCa;
import dev.kiln.controller.pki.IssuedCertificate;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * A launch template's schedule, as `kiln launch` writes it into user data, is the schedule the
 * agent reads back and accepts, whatever its pre and post commands hold.
 */
class ScheduleUserDataTest {

    private static final Instant NOW = Instant.now();
    private static final FleetCa CA = FleetCa.create("kiln schedule CA", NOW.minus(Duration.ofMinutes(5)),
            NOW.plus(Duration.ofDays(1)));
    private static final IssuedCertificate CERT = CA.issueServer("agent", List.of("agent"), List.of(),
            NOW.minus(Duration.ofMinutes(5)), NOW.plus(Duration.ofDays(1)));

    static Stream<String> commands() {
        return UserDataRoundTripTest.values().filter(v -> v.indexOf('\0') < 0);
    }

    @ParameterizedTest(name = "[{index}] {0}")
    @MethodSource("commands")
    void theAgentReadsBackTheTemplatesSchedule(String command) {
        List<Map<String, Object>> schedules = LaunchSchedules.of("notes", List.of(Map.of("role", "data", "every", "24h",
                "at", "03:00", "keep", 7, "pre", command, "post", command)));
        String userData = AgentUserData.yaml(CERT, CA, 7443, Duration.ofHours(2), Duration.ofHours(12), null, null, null,
                AgentUserData.Workload.NONE, List.of(), Map.of("schedules", schedules));

        Map<String, Object> read = UserData.settings(userData).orElseThrow();
        assertEquals(List.of(), SettingsCatalog.problems("EC2 user data", read), userData);
        List<ScheduleSpec> specs = ScheduleSettings.parse((List<?>) read.get(ScheduleSettings.KEY));
        assertEquals(List.of(new ScheduleSpec("data", Duration.ofHours(24), "03:00", 7, command, command)),
                specs, userData);
    }
}
