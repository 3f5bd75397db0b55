package dev.kiln.time;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.time.Duration;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** The durations both programs read: what a person may write, and the messages for what they may not. */
class DurationsTest {

    @ParameterizedTest
    @CsvSource({
        "90s, PT1M30S",
        "5m, PT5M",
        "1h30m, PT1H30M",
        "2d, PT48H",
        "1d2h3m4s, PT26H3M4S",
        "250ms, PT0.25S",
        "0s, PT0S",
        "PT1M30S, PT1M30S",
        "' 10m ', PT10M",
    })
    void acceptsUnitsInARowAndIso8601(String text, String expected) {
        assertEquals(Duration.parse(expected), Durations.parse(text));
    }

    @ParameterizedTest
    @CsvSource(delimiter = '|', value = {
        "a while | 'a while' is not a duration; write e.g. 30s, 5m, 1h30m or 2d",
        "90 | '90' is not a duration; write e.g. 30s, 5m, 1h30m or 2d",
        "1h 30m | '1h 30m' is not a duration; write e.g. 30s, 5m, 1h30m or 2d",
        "5M | '5M' is not a duration; write e.g. 30s, 5m, 1h30m or 2d",
        "-5m | '-5m' is not a duration; write e.g. 30s, 5m, 1h30m or 2d",
        "-PT5M | '-PT5M' is negative",
        "PT-1S | 'PT-1S' is negative",
        "99999999999999999999s | '99999999999999999999s' is too long a duration; write e.g. 30s, 5m, 1h30m or 2d",
        "999999999999999d | '999999999999999d' is too long a duration; write e.g. 30s, 5m, 1h30m or 2d",
    })
    void refusesAnythingElseNamingItAndSayingWhatToWrite(String text, String message) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Durations.parse(text));
        assertEquals(message, e.getMessage());
    }

    @Test
    void refusesEmptyText() {
        for (String empty : new String[] {"", "  ", null}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Durations.parse(empty));
            assertEquals("no duration given; write e.g. 30s, 5m, 1h30m or 2d", e.getMessage());
        }
    }

    @ParameterizedTest
    @CsvSource({"PT45S, 45s", "PT3M12S, 3m12s", "PT2H, 2h", "PT26H3M, 1d2h", "PT48H, 2d"})
    void formatsToTheTwoLargestUnits(String iso, String text) {
        assertEquals(text, Durations.format(Duration.parse(iso)));
    }
}
