package dev.kiln.agent.config;

import org.junit.jupiter.api.Test;
import org.yaml.snakeyaml.Yaml;

import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** kiln.labels, kiln.boot-script and kiln.services as start-up checks them, from YAML as a user writes it. */
class ServiceSettingsTest {

    private static List<String> problems(String yaml) {
        Map<?, ?> parsed = new Yaml().load(yaml);
        return SettingsCatalog.problems("agent.yml", SettingsCatalog.flatten(parsed));
    }

    @Test
    void acceptsTheContractsExample() {
        String yaml = """
                kiln:
                  labels: {pr: "3012", branch: main}
                  boot-script: |
                    #!/bin/sh
                    git clone /srv/repo site
                  services:
                    - name: web
                      port: 8000
                      path: /
                      command: python3 -m http.server 8000
                      keeps-alive: false
                    - name: db
                      port: 5432
                """;
        assertEquals(List.of(), problems(yaml));
        Map<?, ?> parsed = new Yaml().load(yaml);
        List<?> list = (List<?>) ((Map<?, ?>) parsed.get("kiln")).get("services");
        assertEquals(List.of(new ServiceSettings("web", 8000, "/", "python3 -m http.server 8000", false),
                new ServiceSettings("db", 5432, "/", null, false)), ServiceSettings.parse(list));
    }

    @Test
    void refusesADuplicateServiceNameOrPortNamingBothEntries() {
        assertEquals(List.of("setting 'kiln.services[1].name' in agent.yml: service 'web' is already declared by"
                        + " kiln.services[0]; give each service its own name",
                "setting 'kiln.services[2].port' in agent.yml: port 8000 is already declared by kiln.services[0] (web);"
                        + " give each service its own port"),
                problems("""
                        kiln:
                          services:
                            - {name: web, port: 8000}
                            - {name: web, port: 8001}
                            - {name: api, port: 8000}
                        """));
    }

    @Test
    void namesTheIndexedKeyOfABadNamePortOrPath() {
        assertEquals(List.of(
                "invalid value for setting 'kiln.services[0].name' in agent.yml: 'Web_1' is not a service name (expected"
                        + " 1-31 lower-case letters, digits or '-', starting with a letter or digit, such as web)",
                "invalid value for setting 'kiln.services[0].port' in agent.yml: 70000 is out of range (expected a TCP"
                        + " port 1-65535)",
                "invalid value for setting 'kiln.services[0].path' in agent.yml: 'docs' does not start with / (expected"
                        + " the link's path, starting with /, such as /docs/)"),
                problems("kiln:\n  services:\n    - {name: Web_1, port: 70000, path: docs}\n"));
        assertEquals(List.of("invalid value for setting 'kiln.services[0].port' in agent.yml: 0 is out of range"
                + " (expected a TCP port 1-65535)"), problems("kiln:\n  services:\n    - {name: web, port: 0}\n"));
    }

    @Test
    void aServiceNeedsANameAndAPortAndKnowsItsFields() {
        assertEquals(List.of("unknown setting 'kiln.services[0].cmd' in agent.yml; a service has name, port, path,"
                        + " command, keeps-alive",
                "setting 'kiln.services[0].port' in agent.yml is missing (expected a TCP port 1-65535)"),
                problems("kiln:\n  services:\n    - {name: web, cmd: make serve}\n"));
        assertEquals(List.of("setting 'kiln.services' in agent.yml must be a list of services, each with name, port,"
                + " path, command, keeps-alive (name and port required)"), problems("kiln:\n  services: web\n"));
        assertEquals(List.of("invalid value for setting 'kiln.services[0].keeps-alive' in agent.yml: 'yes please' is not"
                + " true or false (expected true or false)"),
                problems("kiln:\n  services:\n    - {name: web, port: 80, keeps-alive: yes please}\n"));
    }

    @Test
    void labelsMustBeNamedSoTheyBecomeDistinctVariables() {
        assertEquals(List.of("setting 'kiln.labels.pr number' in agent.yml: 'pr number' is not a label name (1-63"
                        + " letters, digits, '_' or '-', starting with a letter or digit)"),
                problems("kiln:\n  labels: {\"pr number\": 1}\n"));
        assertEquals(List.of("settings 'kiln.labels.pr-id' and 'kiln.labels.pr_id' in agent.yml both become the"
                        + " environment variable KILN_LABEL_PR_ID; rename one"),
                problems("kiln:\n  labels: {pr-id: 1, pr_id: 2}\n"));
        assertEquals(List.of("setting 'kiln.labels' in agent.yml must be a map of labels such as {pr: \"3012\","
                + " branch: main}, not a list"), problems("kiln:\n  labels: [pr]\n"));
        assertEquals("KILN_LABEL_PR_ID", LabelSettings.envName("pr-id"));
        assertEquals("KILN_LABEL_BRANCH", LabelSettings.envName("branch"));
    }

    @Test
    void anEmptyBootScriptIsRefusedAndTyposGetASuggestion() {
        assertEquals(List.of("invalid value for setting 'kiln.boot-script' in agent.yml: empty (leave kiln.boot-script"
                + " out for no boot script) (expected a shell script's text)"), problems("kiln:\n  boot-script: \"\"\n"));
        assertEquals(List.of("unknown setting 'kiln.boot-scirpt' in agent.yml; did you mean 'kiln.boot-script'?"),
                problems("kiln:\n  boot-scirpt: echo hi\n"));
        assertEquals(List.of("unknown setting 'kiln.service' in agent.yml; did you mean 'kiln.services'?"),
                problems("kiln:\n  service: x\n"));
        assertEquals(List.of("invalid value for setting 'kiln.services' in environment variable KILN_SERVICES: a single"
                + " value; services are a list, set in agent.yml or user data (expected a list of services in agent.yml or"
                + " user data)"), SettingsCatalog.environmentProblems(Map.of("KILN_SERVICES", "web")));
    }
}
