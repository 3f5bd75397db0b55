package dev.kiln.time;

import java.time.Duration;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Durations as people write them, for the CLI's options and the agent's settings alike: a number
 * and a unit ({@code ms}, {@code s}, {@code m}, {@code h}, {@code d}), several in a row
 * ({@code 1h30m}), or ISO-8601 ({@code PT30S}). Never negative.
 */
public final class Durations {

    /** What a bad duration's message suggests instead. */
    public static final String EXAMPLES = "write e.g. 30s, 5m, 1h30m or 2d";

    private static final Pattern PART = Pattern.compile("(\\d+)(ms|s|m|h|d)");

    private Durations() {
    }

    /**
     * The duration {@code text} says.
     *
     * @throws IllegalArgumentException naming the text and what to write instead, when it is
     *                                  empty, negative, too long or not a duration
     */
    public static Duration parse(String text) {
        String t = text == null ? "" : text.strip();
        if (t.isEmpty()) {
            throw new IllegalArgumentException("no duration given; " + EXAMPLES);
        }
        Duration d;
        try {
            d = units(t);
            if (d == null) {
                d = Duration.parse(t);
            }
        } catch (ArithmeticException | NumberFormatException e) {
            throw new IllegalArgumentException("'" + text + "' is too long a duration; " + EXAMPLES);
        } catch (RuntimeException e) {
            throw new IllegalArgumentException("'" + text + "' is not a duration; " + EXAMPLES);
        }
        if (d.isNegative()) {
            throw new IllegalArgumentException("'" + text + "' is negative");
        }
        return d;
    }

    /** The sum of {@code t}'s number-and-unit parts, or null when {@code t} is not made of them only. */
    private static Duration units(String t) {
        Matcher m = PART.matcher(t);
        Duration total = Duration.ZERO;
        int end = 0;
        while (m.find() && m.start() == end) {
            long n = Long.parseLong(m.group(1));
            total = total.plus(switch (m.group(2)) {
                case "ms" -> Duration.ofMillis(n);
                case "s" -> Duration.ofSeconds(n);
                case "m" -> Duration.ofMinutes(n);
                case "h" -> Duration.ofHours(n);
                default -> Duration.ofDays(n);
            });
            end = m.end();
        }
        return end == t.length() ? total : null;
    }

    /** Compact form, to the two largest units: 1d2h, 3m12s, 45s. */
    public static String format(Duration d) {
        long s = d.getSeconds();
        if (s < 60) {
            return s + "s";
        }
        if (s < 3600) {
            return (s / 60) + "m" + (s % 60 == 0 ? "" : (s % 60) + "s");
        }
        if (s < 86400) {
            return (s / 3600) + "h" + ((s % 3600) / 60 == 0 ? "" : ((s % 3600) / 60) + "m");
        }
        return (s / 86400) + "d" + ((s % 86400) / 3600 == 0 ? "" : ((s % 86400) / 3600) + "h");
    }
}
