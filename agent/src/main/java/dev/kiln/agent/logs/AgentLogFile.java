package dev.kiln.agent.logs;

import dev.kiln.agent.startup.AgentLogLayout;
import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.LoggerContext;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.FileAppender;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** The agent's own log on disk ({@code <state-dir>/logs/agent.log}), besides stderr. */
public final class AgentLogFile {

    private AgentLogFile() {
    }

    /** Where the agent's log lives under a state directory. */
    public static Path of(Path stateDir) {
        return stateDir.resolve("logs").resolve("agent.log");
    }

    /** Adds a file appender to the root logger, so every log line also goes to disk. */
    public static void attach(Path file) throws IOException {
        Files.createDirectories(file.getParent());
        LoggerContext ctx = (LoggerContext) LoggerFactory.getILoggerFactory();
        FileAppender<ILoggingEvent> appender = new FileAppender<>();
        appender.setContext(ctx);
        appender.setName("agent-log-file");
        appender.setFile(file.toString());
        appender.setAppend(true);
        appender.setImmediateFlush(true);
        appender.setEncoder(AgentLogLayout.encoder(ctx));
        appender.start();
        ch.qos.logback.classic.Logger root = ctx.getLogger(Logger.ROOT_LOGGER_NAME);
        // Attached again (a start-up that falls back to degraded settings starts a second
        // context): replace the earlier appender rather than writing every line twice.
        var earlier = root.getAppender(appender.getName());
        if (earlier != null) {
            root.detachAppender(earlier);
            earlier.stop();
        }
        root.addAppender(appender);
    }
}
