package dev.kiln.agent.serve;

import org.apache.sshd.server.Environment;
import org.apache.sshd.server.ExitCallback;
import org.apache.sshd.server.channel.ChannelSession;
import org.apache.sshd.server.command.Command;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;

/**
 * The base of the commands the server runs for {@code exec} and {@code shell} requests: each runs
 * on its own thread with the channel's streams and reports an exit status.
 */
abstract class SessionCommand implements Command {

    protected static final Logger LOG = LoggerFactory.getLogger(SessionCommand.class);

    protected InputStream in;
    protected OutputStream out;
    protected OutputStream err;
    private ExitCallback exit;
    private Thread thread;
    protected volatile ChannelSession channel;

    @Override
    public void setInputStream(InputStream in) {
        this.in = in;
    }

    @Override
    public void setOutputStream(OutputStream out) {
        this.out = out;
    }

    @Override
    public void setErrorStream(OutputStream err) {
        this.err = err;
    }

    @Override
    public void setExitCallback(ExitCallback callback) {
        this.exit = callback;
    }

    @Override
    public void start(ChannelSession channel, Environment env) throws IOException {
        this.channel = channel;
        thread = new Thread(() -> {
            int code;
            try {
                code = run();
            } catch (IOException | RuntimeException e) {
                LOG.debug("ssh command {} failed", getClass().getSimpleName(), e);
                code = 1;
            }
            try {
                out.flush();
                err.flush();
            } catch (IOException ignored) {
                // the client is gone
            }
            exit.onExit(code);
        }, "kiln-ssh-" + getClass().getSimpleName());
        thread.setDaemon(true);
        thread.start();
    }

    /** Does the work; returns the exit status. */
    protected abstract int run() throws IOException;

    /** Writes a line to the client's stderr. */
    protected void say(String line) {
        try {
            err.write((line + "\n").getBytes(StandardCharsets.UTF_8));
            err.flush();
        } catch (IOException ignored) {
            // the client is gone
        }
    }

    protected String user() {
        return channel == null ? "?" : channel.getSession().getUsername();
    }

    @Override
    public void destroy(ChannelSession channel) throws Exception {
        if (thread != null) {
            thread.interrupt();
        }
    }

    /** A command that only says why it is refused, and fails. */
    static final class Refusal extends SessionCommand {
        private final String message;
        private final int code;

        Refusal(String message, int code) {
            this.message = message;
            this.code = code;
        }

        @Override
        protected int run() {
            say(message);
            LOG.info("ssh: refused for {}: {}", user(), message);
            return code;
        }
    }
}
