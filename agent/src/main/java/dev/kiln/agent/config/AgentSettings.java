package dev.kiln.agent.config;

import io.micronaut.context.annotation.ConfigurationProperties;
import io.micronaut.core.annotation.Nullable;
import io.micronaut.core.bind.annotation.Bindable;

import java.nio.file.Path;

/**
 * Top-level agent settings ({@code kiln.*}).
 *
 * @param mode      {@code local} (default) or {@code ec2}
 * @param stateDir  where the agent keeps its state (build records, logs, host key, lease)
 * @param name      a display name for the agent; defaults to the host name in local mode
 * @param instanceId the instance's id in local mode (the local provider names its instances)
 * @param bootScript a shell script run once per boot ({@code BootScript})
 */
@ConfigurationProperties(AgentSettings.PREFIX)
public record AgentSettings(
        @Bindable(defaultValue = "local") AgentMode mode,
        @Bindable(defaultValue = "/var/lib/kiln") Path stateDir,
        @Bindable(defaultValue = "") String name,
        @Nullable String instanceId,
        @Nullable String bootScript) {

    static final String PREFIX = "kiln";

    static final SettingRules RULES = SettingRules.of(AgentSettings.class, PREFIX)
            .add("mode", "'local' or 'ec2'", SettingCheck.MODE, SettingCheck::any)
            .add("stateDir", "an absolute path", SettingCheck.PATH, SettingCheck::absolute)
            .add("name", "a display name", SettingCheck.TEXT, SettingCheck::any)
            .add("instanceId", "an instance id such as local-1a2b3c4d", SettingCheck.TEXT, SettingCheck::filled)
            .add("bootScript", "a shell script's text", SettingCheck.TEXT,
                    SettingCheck.filled("empty (leave kiln.boot-script out for no boot script)"));

    public AgentSettings {
        RULES.check(mode, stateDir, name, instanceId, bootScript);
    }
}
