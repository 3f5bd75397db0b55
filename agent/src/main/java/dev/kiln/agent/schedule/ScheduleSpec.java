package dev.kiln.agent.schedule;

import dev.kiln.time.Durations;

import java.time.Duration;
import java.time.LocalTime;
import java.time.format.DateTimeParseException;
import java.util.regex.Pattern;

/**
 * What a snapshot schedule asks for: snapshot the volume of {@code role} every {@code every},
 * from {@code at} (UTC) when given, keeping the newest {@code keep} of Kiln's snapshots of it.
 *
 * @param role  the volume's role; its mount point is {@code .../mnt/ROLE}
 * @param every time between runs, at least one second (hours in practice)
 * @param at    "HH:MM" in UTC for the first run, or empty: {@code every} after the schedule was set
 * @param keep  how many of Kiln's snapshots of the role to keep (0: all)
 * @param pre   a command run as the build user before the freeze, or empty
 * @param post  a command run as the build user after the thaw, or empty
 */
public record ScheduleSpec(String role, Duration every, String at, int keep, String pre, String post) {

    /** The shortest {@code every} accepted (for tests; a real schedule runs every few hours). */
    public static final Duration MIN_EVERY = Duration.ofSeconds(1);

    private static final Pattern ROLE = Pattern.compile("[a-z0-9][a-z0-9._-]{0,62}");
    private static final Pattern AT = Pattern.compile("([01][0-9]|2[0-3]):[0-5][0-9]");
    private static final int MAX_COMMAND = 4096;

    public ScheduleSpec {
        at = at == null ? "" : at.strip();
        pre = pre == null ? "" : pre;
        post = post == null ? "" : post;
    }

    /**
     * Checks every field, naming the first one that is wrong and what it accepts.
     *
     * @throws IllegalArgumentException with the field and the fix
     */
    public ScheduleSpec validate() {
        if (role == null || !ROLE.matcher(role).matches()) {
            throw new IllegalArgumentException("role '" + role + "' is not a volume role (lower-case letters, digits, '.',"
                    + " '_' or '-', e.g. data)");
        }
        if (every == null || every.compareTo(MIN_EVERY) < 0) {
            throw new IllegalArgumentException("every must be at least 1s (e.g. 24h), not "
                    + (every == null ? "unset" : Durations.format(every)));
        }
        if (!at.isEmpty() && !AT.matcher(at).matches()) {
            throw new IllegalArgumentException("at '" + at + "' is not a time of day HH:MM in UTC (e.g. 03:00)");
        }
        if (keep < 0) {
            throw new IllegalArgumentException("keep must be 0 (keep all) or more, not " + keep);
        }
        command("pre", pre);
        command("post", post);
        return this;
    }

    /** The time of day of {@code at}, or null. */
    public LocalTime atTime() {
        if (at.isEmpty()) {
            return null;
        }
        try {
            return LocalTime.parse(at);
        } catch (DateTimeParseException e) {
            throw new IllegalArgumentException("at '" + at + "' is not a time of day HH:MM in UTC (e.g. 03:00)");
        }
    }

    /** "every 24h at 03:00 UTC, keep 7". */
    public String describe() {
        return "every " + Durations.format(every) + (at.isEmpty() ? "" : " at " + at + " UTC")
                + (keep == 0 ? ", keep all" : ", keep " + keep);
    }

    private static void command(String field, String value) {
        if (value.length() > MAX_COMMAND) {
            throw new IllegalArgumentException(field + " is " + value.length() + " characters long; at most " + MAX_COMMAND
                    + " (put a longer one in a script on the volume and name the script)");
        }
        if (value.indexOf('\0') >= 0) {
            throw new IllegalArgumentException(field + " holds a NUL character");
        }
    }
}
