package dev.kiln.controller;

import dev.kiln.controller.cli.KilnCommand;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

class MainTest {

    @Test
    void onlyABareVersionRequestTakesTheShortWay() {
        assertTrue(Main.isVersion(new String[]{"--version"}));
        assertTrue(Main.isVersion(new String[]{"-V"}));
        assertFalse(Main.isVersion(new String[]{}));
        assertFalse(Main.isVersion(new String[]{"status", "--version"}));
        assertFalse(Main.isVersion(new String[]{"--version", "status"}));
    }

    @Test
    void theShortWayPrintsWhatPicocliWould() {
        assertArrayEquals(new KilnCommand.VersionProvider().getVersion(), new String[]{"kiln " + Version.get()});
    }
}
