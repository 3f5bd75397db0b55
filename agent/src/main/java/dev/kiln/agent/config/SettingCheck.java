package dev.kiln.agent.config;

import dev.kiln.time.Durations;

import java.net.URI;
import java.nio.file.InvalidPathException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Locale;
import java.util.function.Function;

/**
 * The settings records' value checks, and the readers that turn a setting's text into a
 * component's type. Each throws {@link IllegalArgumentException} saying what is wrong with the
 * value as shown, e.g. "'relative/dir' is not an absolute path" or "70000 is out of range".
 */
final class SettingCheck {

    /** Checks one value; {@code shown} is the value as the message quotes it ('text' or a number). */
    @FunctionalInterface
    interface Check<T> {
        void check(T value, String shown);
    }

    static final Function<String, String> TEXT = raw -> raw;

    static final Function<String, Integer> NUMBER = raw -> number(raw, "a number");

    static final Function<String, Integer> PORT_NUMBER = raw -> number(raw, "a port number");

    static final Function<String, Boolean> BOOLEAN = raw -> {
        String v = raw.trim().toLowerCase(Locale.ROOT);
        if (!v.equals("true") && !v.equals("false")) {
            throw new IllegalArgumentException("'" + raw + "' is not true or false");
        }
        return Boolean.valueOf(v);
    };

    static final Function<String, Duration> DURATION = Durations::parse;

    static final Function<String, Path> PATH = raw -> {
        try {
            return Path.of(raw);
        } catch (InvalidPathException e) {
            throw new IllegalArgumentException("'" + raw + "' is not a path");
        }
    };

    static final Function<String, AgentMode> MODE = AgentMode::parse;

    private SettingCheck() {
    }

    /** Any value of the component's type. */
    static void any(Object value, String shown) {
    }

    static void filled(Object value, String shown) {
        filled("empty").check(value, shown);
    }

    /** Not blank; {@code message} says what to do about a blank value. */
    static Check<Object> filled(String message) {
        return (value, shown) -> {
            if (value.toString().isBlank()) {
                throw new IllegalArgumentException(message);
            }
        };
    }

    static void absolute(Object value, String shown) {
        filled(value, shown);
        if (!isAbsolute(value.toString())) {
            throw new IllegalArgumentException(shown + " is not an absolute path");
        }
    }

    /** An absolute path, or authorized_keys text: one key line has spaces, several have newlines. */
    static void keys(String value, String shown) {
        filled(value, shown);
        String t = value.strip();
        if (!t.contains("\n") && !t.contains(" ") && !isAbsolute(t)) {
            throw new IllegalArgumentException(shown + " is neither an absolute path nor authorized_keys text");
        }
    }

    static void httpUrl(String value, String shown) {
        boolean ok;
        try {
            URI uri = URI.create(value.trim());
            ok = ("http".equals(uri.getScheme()) || "https".equals(uri.getScheme())) && uri.getHost() != null;
        } catch (IllegalArgumentException e) {
            ok = false;
        }
        if (!ok) {
            throw new IllegalArgumentException(shown + " is not an http(s) URL");
        }
    }

    static Check<Integer> range(int min, int max, String reason) {
        return (value, shown) -> {
            if (value < min || value > max) {
                throw new IllegalArgumentException(shown + " " + reason);
            }
        };
    }

    static void positive(Duration value, String shown) {
        if (value.isNegative() || value.isZero()) {
            throw new IllegalArgumentException(shown + " is not a positive duration");
        }
    }

    static void nonNegative(Duration value, String shown) {
        if (value.isNegative()) {
            throw new IllegalArgumentException(shown + " is negative");
        }
    }

    static Check<String> oneOf(String... allowed) {
        List<String> names = List.of(allowed);
        return (value, shown) -> {
            if (!names.contains(value.trim())) {
                throw new IllegalArgumentException(shown + " is not one of " + String.join(", ", names));
            }
        };
    }

    /** A bound value as messages quote it: numbers bare, durations as settings write them, text in quotes. */
    static String show(Object value) {
        if (value instanceof Number n) {
            return String.valueOf(n);
        }
        if (value instanceof Duration d && !d.isNegative() && d.getNano() == 0) {
            return "'" + Durations.format(d) + "'";
        }
        return "'" + value + "'";
    }

    private static boolean isAbsolute(String v) {
        try {
            return Path.of(v).isAbsolute();
        } catch (InvalidPathException e) {
            return false;
        }
    }

    private static int number(String raw, String what) {
        try {
            return Integer.parseInt(raw.trim());
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("'" + raw.trim() + "' is not " + what);
        }
    }
}
