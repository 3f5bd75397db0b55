package dev.kiln.agent.startup;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.LoggerContext;
import ch.qos.logback.classic.PatternLayout;
import ch.qos.logback.classic.spi.LoggingEvent;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.time.Instant;
import java.time.ZoneId;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The agent's log lines are what logback's PatternLayout makes of AgentLogLayout.PATTERN, which
 * they were until the layout was written out in code: `kiln logs agent` readers and anyone's
 * grep see the same lines.
 */
class AgentLogLayoutTest {

    private final LoggerContext ctx = new LoggerContext();

    @Test
    void writesWhatThePatternWritesInEveryZoneLevelLoggerAndException() throws Exception {
        List<String> zones = List.of("UTC", "Europe/Berlin", "America/St_Johns", "Asia/Kolkata", "Pacific/Chatham",
                "Europe/Amsterdam"); // Amsterdam before 1937: +00:19:32, seconds the pattern drops
        List<Long> times = List.of(0L, 999L, -1L, Instant.parse("2026-12-03T21:04:25.007Z").toEpochMilli(),
                Instant.parse("2026-07-01T00:00:00.120Z").toEpochMilli(), Instant.parse("1930-05-17T08:09:10.011Z").toEpochMilli());
        List<String> loggers = List.of("dev.kiln.agent.serve.SshServer", "org.apache.sshd.common.io.DefaultIoServiceFactoryFactory",
                "Main", "a.b.C", "dev.kiln.agent.AgentLauncher", "io.micronaut.context.DefaultBeanContext", "abcdefghijklmnopqrstuvwx",
                "dev.kiln.agent.build.BuildManager$Runner");
        Exception cause = new IOException("disk full");
        Exception thrown = new IllegalStateException("cannot save the build record", cause);
        thrown.addSuppressed(new IOException("close failed"));
        int lines = 0;
        for (String zone : zones) {
            PatternLayout pattern = new PatternLayout();
            pattern.setContext(ctx);
            pattern.setPattern(AgentLogLayout.PATTERN.replace("XXX}", "XXX, " + zone + "}"));
            pattern.start();
            AgentLogLayout layout = new AgentLogLayout(ZoneId.of(zone));
            layout.setContext(ctx);
            layout.start();
            for (long time : times) {
                for (String name : loggers) {
                    for (Level level : List.of(Level.TRACE, Level.DEBUG, Level.INFO, Level.WARN, Level.ERROR)) {
                        for (LoggingEvent event : events(name, level, time, thrown)) {
                            assertEquals(pattern.doLayout(event), layout.doLayout(event), zone + " " + time + " " + name);
                            lines++;
                        }
                    }
                }
            }
        }
        assertEquals(6 * 6 * 8 * 5 * 2, lines);
    }

    @Test
    void anOffsetOfSecondsOnlyIsWrittenAsTheJdksXxxWritesIt() {
        // No time zone id has such an offset today (PatternLayout takes ids), so the JDK's
        // formatter, which PatternLayout's date uses, is the reference here.
        for (int seconds : new int[] {0, 30, -30, 59, 60, -60, 3599, -3661}) {
            ZoneOffset offset = ZoneOffset.ofTotalSeconds(seconds);
            AgentLogLayout layout = new AgentLogLayout(offset);
            layout.setContext(ctx);
            LoggingEvent event = new LoggingEvent("x", logger("a.B"), Level.INFO, "m", null, null);
            event.setTimeStamp(Instant.parse("2026-12-03T21:13:33.429Z").toEpochMilli());
            String expected = DateTimeFormatter.ofPattern("yyyy-MM-dd'T'HH:mm:ss.SSSXXX").withZone(offset)
                    .format(Instant.ofEpochMilli(event.getTimeStamp()));
            assertEquals(expected + " INFO  a.B - m" + System.lineSeparator(), layout.doLayout(event), "offset " + seconds + " s");
        }
    }

    @Test
    void aLineLooksAsTheDocsShowIt() {
        AgentLogLayout layout = new AgentLogLayout(ZoneId.of("UTC"));
        layout.setContext(ctx);
        LoggingEvent event = new LoggingEvent("x", logger("dev.kiln.agent.serve.SshServer"), Level.INFO, "ssh: serving {}", null,
                new Object[] {"/srv"});
        event.setTimeStamp(Instant.parse("2026-12-03T21:13:33.429Z").toEpochMilli());
        assertEquals("2026-12-03T21:13:33.429Z INFO  d.k.a.serve.SshServer - ssh: serving /srv" + System.lineSeparator(),
                layout.doLayout(event));
        assertTrue(layout.doLayout(events("a.B", Level.ERROR, 0, new IllegalStateException("boom")).get(1))
                .contains("java.lang.IllegalStateException: boom" + System.lineSeparator() + "\tat "));
    }

    /** One event with a message and arguments, one with an exception. */
    private List<LoggingEvent> events(String loggerName, Level level, long time, Throwable thrown) {
        List<LoggingEvent> events = new ArrayList<>();
        LoggingEvent plain = new LoggingEvent("x", logger(loggerName), level, "build {} finished: {}", null,
                new Object[] {"b-17", "SUCCEEDED"});
        plain.setTimeStamp(time);
        events.add(plain);
        LoggingEvent failed = new LoggingEvent("x", logger(loggerName), level, "it failed", thrown, null);
        failed.setTimeStamp(time);
        events.add(failed);
        return events;
    }

    private Logger logger(String name) {
        return ctx.getLogger(name);
    }
}
