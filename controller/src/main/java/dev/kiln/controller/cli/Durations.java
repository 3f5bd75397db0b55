package dev.kiln.controller.cli;

import dev.kiln.controller.ExitCodes;
import dev.kiln.controller.KilnException;

import java.time.Duration;

/** The CLI's durations: {@link dev.kiln.time.Durations}, with a bad one a usage error. */
public final class Durations {

    private Durations() {
    }

    /** As {@link dev.kiln.time.Durations#parse(String)}; a bad duration exits with {@link ExitCodes#USAGE}. */
    public static Duration parse(String text) {
        try {
            return dev.kiln.time.Durations.parse(text);
        } catch (IllegalArgumentException e) {
            throw new KilnException(ExitCodes.USAGE, e.getMessage());
        }
    }

    /** Compact form: 1d2h, 3m12s, 45s. */
    public static String format(Duration d) {
        return dev.kiln.time.Durations.format(d);
    }
}
