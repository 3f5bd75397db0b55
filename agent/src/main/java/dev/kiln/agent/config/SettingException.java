package dev.kiln.agent.config;

/**
 * A settings record refuses a value it is bound with, from a source the start-up check does not
 * read (a {@code -Dkiln.*} system property) or from code. The message names the setting, the
 * value and what it accepts.
 */
public final class SettingException extends IllegalArgumentException {

    SettingException(String key, String problem, String accepts) {
        super("invalid value for setting '" + key + "': " + problem + " (expected " + accepts + ")");
    }
}
