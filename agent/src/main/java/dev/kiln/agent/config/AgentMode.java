package dev.kiln.agent.config;

/** How the agent runs: on an EC2 instance, or as a local process with no EC2 at all. */
public enum AgentMode {
    /** On EC2: identity and user data come from IMDSv2. */
    EC2,
    /** No EC2: no IMDS, loop-backed or directory volumes, "power off" ends the process. */
    LOCAL;

    /** Parses the setting's value ("ec2" or "local", any case). */
    public static AgentMode parse(String value) {
        for (AgentMode mode : values()) {
            if (mode.name().equalsIgnoreCase(value.trim())) {
                return mode;
            }
        }
        throw new IllegalArgumentException("must be 'local' or 'ec2', not '" + value + "'");
    }

    /** The setting's spelling. */
    public String settingValue() {
        return name().toLowerCase(java.util.Locale.ROOT);
    }
}
