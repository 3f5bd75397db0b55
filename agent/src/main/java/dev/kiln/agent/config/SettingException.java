package dev.kiln.agent.config;

/**
 * A settings record was bound with a value its check refuses: a source the start-up check does
 * not read (a {@code -Dkiln.*} system property) or a record built in code. The message names the
 * setting, the value and what it accepts.
 */
public final class SettingException extends IllegalArgumentException {

    SettingException(String key, String problem, String accepts) {
        super("invalid value for setting '" + key + "': " + problem + " (expected " + accepts + ")");
    }
}
