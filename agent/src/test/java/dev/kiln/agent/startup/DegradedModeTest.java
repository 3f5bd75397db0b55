package dev.kiln.agent.startup;

import dev.kiln.agent.config.AgentMode;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class DegradedModeTest {

    private static final DegradedMode LOCAL = new DegradedMode(AgentMode.LOCAL, false, false);
    private static final DegradedMode EC2 = new DegradedMode(AgentMode.EC2, false, true);
    private static final DegradedMode EC2_DEGRADED = new DegradedMode(AgentMode.EC2, true, true);

    @Test
    void unusableSettingsStopALocalAgentWithAConfigurationError() {
        StartupFailure f = assertInstanceOf(StartupFailure.class, LOCAL.unusable("configuration error", "kiln.lease.ttl: bad"));
        assertEquals(StartupFailure.EXIT_CONFIG, f.exitCode());
        assertEquals("configuration error: kiln.lease.ttl: bad", f.getMessage());
    }

    @Test
    void unusableSettingsInEc2ModeBlameTheUserData() {
        UserDataUnusable u = assertInstanceOf(UserDataUnusable.class, EC2.unusable("start-up failed", "kiln.tls.key: bad"));
        assertEquals("EC2 user data: kiln.tls.key: bad", u.getMessage());
        DegradedMode noSettings = new DegradedMode(AgentMode.EC2, false, false);
        assertEquals("the EC2 user data has no kiln settings (kiln launch writes them): kiln.tls.cert is not set",
                noSettings.unusable("configuration error", "kiln.tls.cert is not set").getMessage());
    }

    @Test
    void aDegradedAgentWhoseSettingsStillFailStopsInsteadOfStartingAgain() {
        StartupFailure f = assertInstanceOf(StartupFailure.class, EC2_DEGRADED.unusable("configuration error", "x"));
        assertEquals(StartupFailure.EXIT_CONFIG, f.exitCode());
    }

    @Test
    void onlyADegradedAgentRunsWithoutUsableTls() {
        assertEquals("kiln.tls.cert: cannot read", EC2_DEGRADED.tlsUnusable("kiln.tls.cert: cannot read"));
        assertThrows(UserDataUnusable.class, () -> EC2.tlsUnusable("kiln.tls.cert: cannot read"));
        StartupFailure f = assertThrows(StartupFailure.class, () -> LOCAL.tlsUnusable("kiln.tls.cert is not set"));
        assertEquals("configuration error: kiln.tls.cert is not set", f.getMessage());
    }

    @Test
    void aLateFailureStopsALocalAgentAndIsOnlyReportedInEc2Mode() {
        List<String> reported = new ArrayList<>();
        StartupFailure f = assertThrows(StartupFailure.class, () -> LOCAL.lateFailure("cannot start the SSH server: in use",
                StartupFailure.EXIT_UNAVAILABLE, "not serving over SSH: cannot start the SSH server: in use", reported::add));
        assertEquals(StartupFailure.EXIT_UNAVAILABLE, f.exitCode());
        assertEquals("cannot start the SSH server: in use", f.getMessage());
        assertTrue(reported.isEmpty());

        EC2.lateFailure("cannot start the SSH server: in use", StartupFailure.EXIT_UNAVAILABLE,
                "not serving over SSH: cannot start the SSH server: in use", reported::add);
        EC2_DEGRADED.lateFailure("cannot start the gRPC server: in use", StartupFailure.EXIT_UNAVAILABLE,
                "cannot start the gRPC server: in use", reported::add);
        assertEquals(List.of("not serving over SSH: cannot start the SSH server: in use",
                "cannot start the gRPC server: in use"), reported);
    }

    @Test
    void theFallbackKeepsOnlyValidReachabilitySettingsAndTurnsSshOff() {
        DegradedMode.Fallback f = DegradedMode.fallback(Map.of("kiln.grpc.port", 7444, "kiln.grpc.host", "",
                "kiln.name", "web-1", "kiln.ssh.enabled", true, "kiln.boot-build.command", List.of("make"),
                "kiln.grpc.prot", 1), Optional.empty(), Optional.empty());
        assertEquals(7444, f.settings().get("kiln.grpc.port"));
        assertEquals("web-1", f.settings().get("kiln.name"));
        assertEquals("false", f.settings().get("kiln.ssh.enabled"));
        assertEquals("false", f.settings().get("kiln.lease.forever"));
        assertFalse(f.settings().containsKey("kiln.boot-build.command"));
        assertFalse(f.settings().containsKey("kiln.grpc.prot"));
        assertFalse(f.settings().containsKey("kiln.grpc.host"), "an empty bind address is not valid");
        assertFalse(DegradedMode.fallback(Map.of("kiln.grpc.port", 99999), Optional.empty(), Optional.empty())
                .settings().containsKey("kiln.grpc.port"));
    }

    @Test
    void theLeaseIsTheUserDatasThenTheConfiguredThenTheFallbackTtl() {
        DegradedMode.Fallback fromUserData = DegradedMode.fallback(Map.of("kiln.lease.ttl", "2h"), Optional.of("1h"),
                Optional.of("5m"));
        assertEquals("PT2H", fromUserData.settings().get("kiln.lease.ttl"));
        assertEquals("PT2H", fromUserData.settings().get("kiln.lease.max-lifetime"));
        assertTrue(fromUserData.message().contains("it ends the instance PT2H after its first start (kiln.lease.ttl in the"
                + " user data)"), fromUserData.message());

        DegradedMode.Fallback configured = DegradedMode.fallback(Map.of("kiln.lease.ttl", "soon"), Optional.of("1h"),
                Optional.of("5m"));
        assertEquals("PT1H", configured.settings().get("kiln.lease.ttl"));
        assertTrue(configured.message().contains("(kiln.lease.ttl in agent.yml or the environment)"), configured.message());

        DegradedMode.Fallback fallback = DegradedMode.fallback(Map.of(), Optional.of("0s"), Optional.of("5m"));
        assertEquals("PT5M", fallback.settings().get("kiln.lease.ttl"));
        assertTrue(fallback.message().contains("(kiln.lease.fallback-ttl: no usable kiln.lease.ttl)"), fallback.message());

        assertEquals("PT30M", DegradedMode.fallback(Map.of(), Optional.empty(), Optional.empty()).settings().get("kiln.lease.ttl"));
    }
}
