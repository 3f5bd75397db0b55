package dev.kiln.agent.startup;

import ch.qos.logback.classic.pattern.TargetLengthBasedClassNameAbbreviator;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.classic.spi.IThrowableProxy;
import ch.qos.logback.classic.spi.ThrowableProxyUtil;
import ch.qos.logback.core.CoreConstants;
import ch.qos.logback.core.Context;
import ch.qos.logback.core.LayoutBase;
import ch.qos.logback.core.encoder.LayoutWrappingEncoder;

import java.time.Instant;
import java.time.LocalDateTime;
import java.time.ZoneId;
import java.time.ZoneOffset;

/**
 * The agent's log line, written out in code: the line logback's {@code PatternLayout} makes of
 * {@link #PATTERN}, character for character (AgentLogLayoutTest compares the two), without
 * loading the pattern's parser and converters at every start for one fixed format (what that
 * saves: docs/performance.md).
 */
public final class AgentLogLayout extends LayoutBase<ILoggingEvent> {

    /** The format this layout writes, as a logback pattern. */
    public static final String PATTERN = "%d{yyyy-MM-dd'T'HH:mm:ss.SSSXXX} %-5level %logger{24} - %msg%n";

    private final TargetLengthBasedClassNameAbbreviator abbreviator = new TargetLengthBasedClassNameAbbreviator(24);
    private final ZoneId zone;

    /** A layout in the JVM's default time zone, as the pattern's date is. */
    public AgentLogLayout() {
        this(ZoneId.systemDefault());
    }

    AgentLogLayout(ZoneId zone) {
        this.zone = zone;
    }

    /** A started encoder of this layout, for an appender of this logger context. */
    public static LayoutWrappingEncoder<ILoggingEvent> encoder(Context ctx) {
        AgentLogLayout layout = new AgentLogLayout();
        layout.setContext(ctx);
        layout.start();
        LayoutWrappingEncoder<ILoggingEvent> encoder = new LayoutWrappingEncoder<>();
        encoder.setContext(ctx);
        encoder.setLayout(layout);
        encoder.start();
        return encoder;
    }

    @Override
    public String doLayout(ILoggingEvent event) {
        StringBuilder line = new StringBuilder(128);
        timestamp(line, event.getTimeStamp());
        line.append(' ');
        String level = event.getLevel().toString();
        line.append(level);
        for (int i = level.length(); i < 5; i++) {
            line.append(' ');
        }
        line.append(' ').append(abbreviator.abbreviate(event.getLoggerName()));
        line.append(" - ").append(event.getFormattedMessage()).append(CoreConstants.LINE_SEPARATOR);
        IThrowableProxy thrown = event.getThrowableProxy();
        if (thrown != null) {
            line.append(ThrowableProxyUtil.asString(thrown)); // its lines, each ending in a line separator
        }
        return line.toString();
    }

    /** {@code yyyy-MM-dd'T'HH:mm:ss.SSSXXX}: local time, then Z or the offset's hours and minutes. */
    private void timestamp(StringBuilder out, long epochMillis) {
        ZoneOffset offset = zone.getRules().getOffset(Instant.ofEpochMilli(epochMillis));
        int millis = (int) Math.floorMod(epochMillis, 1000L);
        LocalDateTime t = LocalDateTime.ofEpochSecond(Math.floorDiv(epochMillis, 1000L), millis * 1_000_000, offset);
        digits(out, t.getYear(), 4).append('-');
        digits(out, t.getMonthValue(), 2).append('-');
        digits(out, t.getDayOfMonth(), 2).append('T');
        digits(out, t.getHour(), 2).append(':');
        digits(out, t.getMinute(), 2).append(':');
        digits(out, t.getSecond(), 2).append('.');
        digits(out, millis, 3);
        int seconds = offset.getTotalSeconds();
        int abs = Math.abs(seconds);
        if (abs < 60) {
            out.append('Z'); // as the JDK's XXX: no hours and no minutes to show (seconds are dropped)
            return;
        }
        out.append(seconds < 0 ? '-' : '+');
        digits(out, abs / 3600, 2).append(':');
        digits(out, abs / 60 % 60, 2);
    }

    private static StringBuilder digits(StringBuilder out, int value, int width) {
        String s = Integer.toString(value);
        for (int i = s.length(); i < width; i++) {
            out.append('0');
        }
        return out.append(s);
    }
}
