package dev.kiln.agent.serve;

import dev.kiln.agent.fs.FsAccess;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.util.ArrayList;
import java.util.List;

/**
 * Runs the real {@code rsync --server} that {@link RsyncPolicy} allowed, inside the {@link Sandbox},
 * with the user's areas mounted: read-only for a sender, and only {@code /sources} writable for
 * the owner's uploads. Bytes are pumped between the SSH channel and the process.
 */
final class RsyncCommand extends SessionCommand {

    private final RsyncPolicy.Decision decision;
    private final ServedTree tree;
    private final Sandbox sandbox;
    private final FsAccess access;
    private volatile Process process;

    RsyncCommand(RsyncPolicy.Decision decision, ServedTree tree, Sandbox sandbox, FsAccess access) {
        this.decision = decision;
        this.tree = tree;
        this.sandbox = sandbox;
        this.access = access;
    }

    @Override
    protected int run() throws IOException {
        List<Sandbox.Mount> mounts = new ArrayList<>();
        for (Area a : tree.areas()) {
            mounts.add(new Sandbox.Mount(a.base(), "/" + a.name(), a.writable() && !decision.sender()));
        }
        LOG.info("ssh: {} runs {}", user(), String.join(" ", decision.argv()));
        Process p = sandbox.start(decision.argv(), mounts, access);
        process = p;
        Thread toProcess = pump(in, p.getOutputStream(), true, "stdin");
        Thread fromErr = pump(p.getErrorStream(), err, false, "stderr");
        try {
            copy(p.getInputStream(), out);
            fromErr.join(10_000);
            int code = p.waitFor();
            toProcess.interrupt();
            return code;
        } catch (InterruptedException e) {
            p.destroyForcibly();
            Thread.currentThread().interrupt();
            return 130;
        } catch (IOException e) {
            p.destroyForcibly();
            throw e;
        }
    }

    /** Bytes a pump reads at once: whatever the pipe holds, up to two of OpenSSH's 32 KiB packets. */
    private static final int PUMP_BUFFER = 65536;

    /**
     * Copies rsync's output to the channel as it comes, flushing after each read so its protocol
     * messages reach the client at once. Each flush sends what it holds as its own SSH packets, so
     * the reads are large (a pipe read returns what is there) rather than transferTo's 8 KiB.
     */
    private static void copy(InputStream from, OutputStream to) throws IOException {
        byte[] buf = new byte[PUMP_BUFFER];
        int n;
        while ((n = from.read(buf)) >= 0) {
            to.write(buf, 0, n);
            to.flush();
        }
    }

    private static Thread pump(InputStream from, OutputStream to, boolean closeAtEnd, String name) {
        Thread t = new Thread(() -> {
            try {
                byte[] buf = new byte[PUMP_BUFFER];
                int n;
                while ((n = from.read(buf)) >= 0) {
                    to.write(buf, 0, n);
                    to.flush();
                }
            } catch (IOException ignored) {
                // one side closed
            } finally {
                if (closeAtEnd) {
                    try {
                        to.close();
                    } catch (IOException ignored) {
                        // already closed
                    }
                }
            }
        }, "kiln-rsync-" + name);
        t.setDaemon(true);
        t.start();
        return t;
    }

    @Override
    public void destroy(org.apache.sshd.server.channel.ChannelSession channel) throws Exception {
        Process p = process;
        if (p != null) {
            p.destroyForcibly();
        }
        super.destroy(channel);
    }
}
