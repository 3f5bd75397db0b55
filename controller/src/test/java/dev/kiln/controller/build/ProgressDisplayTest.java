package dev.kiln.controller.build;

import dev.kiln.proto.agent.v1.Build;
import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** What a build's progress looks like in a log file (not a terminal): a line now and then, not one a second. */
class ProgressDisplayTest {

    @Test
    void withoutATerminalAProgressLineComesAtMostEveryFiveSeconds() {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        AtomicLong seconds = new AtomicLong();
        ProgressDisplay display = new ProgressDisplay(new PrintStream(bytes, true, StandardCharsets.UTF_8), false,
                Build::getDefaultInstance, () -> seconds.get() * 1_000_000_000L);
        // The build advances every second, as the display polls it, for 12 seconds.
        for (int s = 0; s <= 12; s++) {
            seconds.set(s);
            display.show(s * 6L, 72);
        }
        display.close();
        assertEquals(List.of("kiln: progress 0/72 commands", "kiln: progress 30/72 commands", "kiln: progress 60/72 commands"),
                bytes.toString(StandardCharsets.UTF_8).lines().toList());
    }

    @Test
    void onATerminalTheBarFollowsEveryChange() {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        ProgressDisplay display = new ProgressDisplay(new PrintStream(bytes, true, StandardCharsets.UTF_8), true,
                Build::getDefaultInstance, () -> 0L);
        display.show(1, 4);
        display.show(2, 4);
        display.close();
        assertEquals("\r[#######.......................] 1/4 commands\r[###############...............] 2/4 commands\n",
                bytes.toString(StandardCharsets.UTF_8));
    }
}
