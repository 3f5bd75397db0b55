package dev.kiln.agent.config;

import io.micronaut.context.annotation.ConfigurationProperties;
import io.micronaut.core.annotation.Introspected;
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
@Introspected
@ConfigurationProperties("kiln")
public record AgentSettings(
        @Accepts("'local' or 'ec2'") @Bindable(defaultValue = "local") AgentMode mode,
        @Accepts("an absolute path") @AbsolutePath @Bindable(defaultValue = "/var/lib/kiln") Path stateDir,
        @Accepts("a display name") @Bindable(defaultValue = "") String name,
        @Accepts("an instance id such as local-1a2b3c4d") @Filled @Nullable String instanceId,
        @Accepts("a shell script's text")
        @Filled(message = "empty (leave kiln.boot-script out for no boot script)") @Nullable String bootScript) {
}
