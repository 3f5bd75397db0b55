package dev.kiln.agent.logs;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** What followers of a live log are told: the end, once, and only while they still want it. */
class LogFileTest {

    @TempDir
    Path dir;

    @Test
    void theEndIsToldOnceToEachFollowerStillThere() throws Exception {
        LogFile log = LogFile.open(dir.resolve("log"));
        List<String> told = new ArrayList<>();
        log.whenEnded(() -> told.add("stayed"));
        Runnable forget = log.whenEnded(() -> told.add("left"));
        forget.run();
        log.append(LogChannel.STDOUT, "x\n".getBytes(), 0, 2);
        assertEquals(List.of(), told, "growth is not the end");
        log.close();
        assertEquals(List.of("stayed"), told, "a follower that left is not kept, nor told");
        log.close();
        assertEquals(List.of("stayed"), told, "closing twice tells nobody twice");
        log.whenEnded(() -> told.add("late"));
        assertEquals(List.of("stayed", "late"), told, "a follower arriving after the end is told at once");
    }
}
