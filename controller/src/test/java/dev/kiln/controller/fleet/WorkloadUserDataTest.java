package dev.kiln.controller.fleet;

import org.junit.jupiter.api.Test;
import org.yaml.snakeyaml.LoaderOptions;
import org.yaml.snakeyaml.Yaml;
import org.yaml.snakeyaml.constructor.SafeConstructor;

import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

/**
 * Labels, boot script and services as `kiln launch` writes them into the agent's settings: read
 * back by a YAML reader, every value is the string or number given, whatever it holds.
 */
class WorkloadUserDataTest {

    @SuppressWarnings("unchecked")
    static Map<String, Object> readBack(AgentUserData.Workload w) {
        Map<String, Object> kiln = new LinkedHashMap<>(AgentUserData.workload(w));
        Map<String, Object> doc = new Yaml(new SafeConstructor(new LoaderOptions())).load(AgentUserData.write("test", kiln));
        return (Map<String, Object>) doc.get("kiln");
    }

    @Test
    void labelsStayStringsAndTheScriptComesBackByteForByte() {
        // Values YAML would read as a number, a boolean, null or a second key if pasted as text.
        Map<String, String> labels = Map.of("pr", "3012", "draft", "no", "branch", "fix: x\nkiln:\n  mode: local", "empty", "");
        String script = "#!/bin/sh\nset -eu\t \ngit checkout \"$KILN_LABEL_BRANCH\"  \n\n  make site\r\necho 'done: ✓'\n";
        Map<String, Object> kiln = readBack(new AgentUserData.Workload(labels, new BootScript(Path.of("boot.sh"), script),
                List.of()));
        assertEquals(labels, kiln.get("labels"));
        assertEquals(script, kiln.get("boot-script"));
        assertFalse(kiln.containsKey("services"), kiln.toString());
    }

    @Test
    void servicesCarryOnlyWhatDiffersFromTheDefaults() {
        List<ServiceSpec> services = ServiceSpec.check(List.of(ServiceSpec.parse("web:8000=python3 -m http.server 8000"),
                ServiceSpec.parse("shop:8080/admin"), ServiceSpec.parse("repl:7888=sh -c 'echo \"#\"; exec repl'")),
                List.of("repl"), Map.of());
        Map<String, Object> kiln = readBack(new AgentUserData.Workload(Map.of(), null, services));
        assertEquals(List.of(
                Map.of("name", "web", "port", 8000, "command", "python3 -m http.server 8000"),
                Map.of("name", "shop", "port", 8080, "path", "/admin"),
                Map.of("name", "repl", "port", 7888, "command", "sh -c 'echo \"#\"; exec repl'", "keeps-alive", true)),
                kiln.get("services"));
        assertFalse(kiln.containsKey("labels") || kiln.containsKey("boot-script"), kiln.toString());
    }
}
