package dev.kiln.agent.config;

import io.micronaut.context.annotation.ConfigurationProperties;
import io.micronaut.core.bind.annotation.Bindable;

import java.nio.file.Path;

/**
 * Top-level agent settings ({@code kiln.*}).
 *
 * @param mode      {@code local} (default) or {@code ec2}
 * @param stateDir  where the agent keeps its state (build records, logs, host key, lease)
 * @param name      a display name for the agent; defaults to the host name in local mode
 */
@ConfigurationProperties("kiln")
public record AgentSettings(
        @Bindable(defaultValue = "local") AgentMode mode,
        @Bindable(defaultValue = "/var/lib/kiln") Path stateDir,
        @Bindable(defaultValue = "") String name) {
}
