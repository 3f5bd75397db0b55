package dev.kiln.agent.service;

import dev.kiln.agent.config.SettingsCatalog;
import dev.kiln.agent.startup.AgentDefaults;
import io.micronaut.context.ApplicationContext;
import io.micronaut.context.env.Environment;
import io.micronaut.context.env.PropertySource;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.yaml.snakeyaml.Yaml;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The settings reach the beans as the agent reads them: from agent.yml (Micronaut's YAML source)
 * and from EC2 user data (flattened by the agent, as {@code AgentLauncher} adds it), each checked
 * by the catalog first as start-up does.
 */
class ServiceWiringTest {

    static final String SETTINGS = """
            kiln:
              labels: {pr: "3012", branch: main, pr-id: "7", Team_Name: core}
              boot-script: |
                #!/bin/sh
                echo hello
              services:
                - name: web
                  port: 8000
                  path: /app/
                  command: python3 -m http.server 8000
                  keeps-alive: true
                - name: db
                  port: 5432
            """;

    @TempDir
    Path tmp;

    @AfterEach
    void clear() {
        System.clearProperty("micronaut.config.files");
    }

    static void check(ApplicationContext context) {
        Environment env = context.getEnvironment();
        for (PropertySource source : env.getPropertySources()) {
            Map<String, Object> values = new LinkedHashMap<>();
            for (String key : source) {
                values.put(key, source.get(key));
            }
            assertEquals(List.of(), SettingsCatalog.problems(source.getName(), values), source.getName());
        }
        context.start();
        ServiceSupervisor services = context.getBean(ServiceSupervisor.class);
        assertEquals(Map.of("pr", "3012", "branch", "main", "pr-id", "7", "Team_Name", "core"), services.labels());
        assertEquals(List.of(8000, 5432), context.getBean(ServicePorts.class).ports());
        List<ServiceStatus> statuses = services.statuses();
        assertEquals("/app/", statuses.get(0).settings().path());
        assertTrue(statuses.get(0).settings().keepsAlive());
        assertEquals(ServiceState.WAITING, statuses.get(0).state());
        assertEquals(ServiceState.EXTERNAL, statuses.get(1).state());
        assertTrue(context.getBean(BootScript.class).present());
    }

    @Test
    void fromAgentYml() throws Exception {
        Path agentYml = tmp.resolve("agent.yml");
        Files.writeString(agentYml, SETTINGS + "  state-dir: " + tmp.resolve("state") + "\n");
        System.setProperty("micronaut.config.files", agentYml.toString());
        try (ApplicationContext context = AgentDefaults.contextBuilder().build()) {
            context.getEnvironment().start();
            check(context);
        }
    }

    @Test
    void fromUserData() {
        Map<String, Object> userData = SettingsCatalog.flatten(new Yaml().load(SETTINGS));
        userData.put("kiln.state-dir", tmp.resolve("state").toString());
        try (ApplicationContext context = AgentDefaults.contextBuilder()
                .propertySources(PropertySource.of("ec2-user-data", userData, 200)).build()) {
            context.getEnvironment().start();
            check(context);
        }
    }
}
