package dev.kiln.agent.config;

import java.net.URI;
import java.nio.file.InvalidPathException;
import java.nio.file.Path;

/** Checks of a setting's text that its constraints ({@link AbsolutePath}, {@link HttpUrl}, ...) share. */
final class SettingText {

    private SettingText() {
    }

    static boolean absolute(String v) {
        try {
            return !v.isBlank() && Path.of(v).isAbsolute();
        } catch (InvalidPathException e) {
            return false;
        }
    }

    static boolean httpUrl(String v) {
        try {
            URI uri = URI.create(v.trim());
            return ("http".equals(uri.getScheme()) || "https".equals(uri.getScheme())) && uri.getHost() != null;
        } catch (IllegalArgumentException e) {
            return false;
        }
    }

    /** An absolute path, or authorized_keys text: one key line has spaces, several have newlines. */
    static boolean keys(String v) {
        String t = v.strip();
        return t.contains("\n") || t.contains(" ") || absolute(t);
    }
}
