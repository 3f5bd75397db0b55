package dev.kiln.controller.fleet;

import dev.kiln.controller.ExitCodes;
import dev.kiln.controller.KilnException;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** `--service NAME:PORT[/PATH][=COMMAND]` and a template's `services` entries, as `kiln launch` reads them. */
class ServiceSpecTest {

    @Test
    void readsACommandAPathAndADeclaredOnlyEndpoint() {
        assertEquals(new ServiceSpec("web", 8000, "/", "python3 -m http.server 8000", false),
                ServiceSpec.parse("web:8000=python3 -m http.server 8000"));
        assertEquals(new ServiceSpec("shop", 8080, "/admin/", null, false), ServiceSpec.parse("shop:8080/admin/"));
        // '=' inside the command belongs to the command.
        assertEquals("env A=1 B=2 ./serve", ServiceSpec.parse("api:9000/v1=env A=1 B=2 ./serve").command());
        assertEquals("/v1", ServiceSpec.parse("api:9000/v1=env A=1 B=2 ./serve").path());
    }

    @Test
    void refusesMalformedServicesNamingTheFormAndTheProblem() {
        Map<String, String> cases = Map.of(
                "web", "is not NAME:PORT[/PATH][=COMMAND]",
                "web:http", "is not NAME:PORT[/PATH][=COMMAND]",
                "Web:8000", "the name 'Web' must be 1-31 lower-case letters",
                "web:0", "port 0 is not 1-65535",
                "web:70000", "port 70000 is not 1-65535",
                "web:8000=", "nothing follows '='",
                "web:8000/a b", "the path '/a b' is not a URL path",
                "web:8000//evil.example/x", "the path '//evil.example/x' is not a URL path");
        cases.forEach((text, why) -> {
            KilnException e = assertThrows(KilnException.class, () -> ServiceSpec.parse(text), text);
            assertEquals(ExitCodes.USAGE, e.exitCode(), text);
            assertTrue(e.getMessage().startsWith("--service '" + text + "': " + why), e.getMessage());
        });
    }

    @Test
    void refusesATakenPortOrNameAndAKeepsAliveForNoService() {
        List<ServiceSpec> twoPorts = List.of(ServiceSpec.parse("web:8000=a"), ServiceSpec.parse("api:8000=b"));
        KilnException port = assertThrows(KilnException.class, () -> ServiceSpec.check(twoPorts, List.of(), Map.of()));
        assertEquals("port 8000 is declared by 2 services (web:8000=a, api:8000=b); nothing was launched: give each service"
                + " its own port", port.getMessage());
        List<ServiceSpec> twoNames = List.of(ServiceSpec.parse("web:8000=a"), ServiceSpec.parse("web:8001=b"));
        assertTrue(assertThrows(KilnException.class, () -> ServiceSpec.check(twoNames, List.of(), Map.of())).getMessage()
                .startsWith("--service gives the name 'web' 2 times (web:8000=a, web:8001=b)"));
        KilnException agent = assertThrows(KilnException.class, () -> ServiceSpec.check(List.of(ServiceSpec.parse("web:7443")),
                List.of(), Map.of(7443, "the agent's own gRPC port (--grpc-port)")));
        assertTrue(agent.getMessage().startsWith("port 7443 of service 'web' is the agent's own gRPC port"), agent.getMessage());
        KilnException keeps = assertThrows(KilnException.class, () -> ServiceSpec.check(List.of(ServiceSpec.parse("web:8000")),
                List.of("repl"), Map.of()));
        assertEquals(ExitCodes.USAGE, keeps.exitCode());
        assertTrue(keeps.getMessage().startsWith("--service-keeps-alive repl names no service of this launch (declared: web)"),
                keeps.getMessage());
        assertEquals(List.of(new ServiceSpec("web", 8000, "/", null, true)),
                ServiceSpec.check(List.of(ServiceSpec.parse("web:8000")), List.of("web"), Map.of()));
    }

    @Test
    void aTemplateEntryIsTheSameTextOrAMap() {
        assertEquals(ServiceSpec.parse("web:8000=make serve"), ServiceSpec.fromTemplate("web:8000=make serve", "preview"));
        assertEquals(new ServiceSpec("repl", 7888, "/", "clojure -M:nrepl", true), ServiceSpec.fromTemplate(
                Map.of("name", "repl", "port", 7888, "command", "clojure -M:nrepl", "keeps-alive", true), "dev"));
        KilnException unknown = assertThrows(KilnException.class,
                () -> ServiceSpec.fromTemplate(Map.of("name", "web", "port", 80, "cmd", "x"), "preview"));
        assertEquals(ExitCodes.CONFIG, unknown.exitCode());
        assertTrue(unknown.getMessage().startsWith("template 'preview': services: unknown key 'cmd'"), unknown.getMessage());
    }
}
