package dev.kiln.agent.startup;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.LoggerContext;
import ch.qos.logback.classic.spi.Configurator;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.ConsoleAppender;
import ch.qos.logback.core.spi.ContextAwareBase;

/**
 * The agent's logging set up in code (registered in META-INF/services): every line to stderr (the
 * journal, under systemd), INFO and up, libraries at WARN. Set up in code rather than by a
 * logback.xml, whose parsing loads about 450 classes (logback's Joran and the JDK's XML parser) at
 * every start (docs/performance.md); {@link AgentLogLayout} writes the lines, for the same reason.
 * {@code -Dlogback.configurationFile=FILE} still wins: with it set, this configurator steps aside.
 */
public final class AgentLogging extends ContextAwareBase implements Configurator {

    @Override
    public ExecutionStatus configure(LoggerContext ctx) {
        if (System.getProperty("logback.configurationFile") != null) {
            return ExecutionStatus.INVOKE_NEXT_IF_ANY;
        }
        ConsoleAppender<ILoggingEvent> stderr = new ConsoleAppender<>();
        stderr.setContext(ctx);
        stderr.setName("STDERR");
        stderr.setTarget("System.err");
        stderr.setEncoder(AgentLogLayout.encoder(ctx)); // the line AgentLogLayout.PATTERN describes
        stderr.start();
        for (String library : new String[] {"io.micronaut", "io.grpc", "io.netty", "software.amazon"}) {
            ctx.getLogger(library).setLevel(Level.WARN);
        }
        Logger root = ctx.getLogger(Logger.ROOT_LOGGER_NAME);
        root.setLevel(Level.INFO);
        root.addAppender(stderr);
        return ExecutionStatus.DO_NOT_INVOKE_NEXT_IF_ANY;
    }
}
