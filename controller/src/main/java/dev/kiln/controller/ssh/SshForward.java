package dev.kiln.controller.ssh;

import dev.kiln.controller.ExitCodes;
import dev.kiln.controller.KilnException;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * OpenSSH's {@code ssh -N -L 127.0.0.1:LOCAL:127.0.0.1:PORT} to an agent, with the target's
 * options (strict host key checking against Kiln's known_hosts): started, checked to listen,
 * then run until it ends or {@link #stop()} is called.
 */
public final class SshForward {

    private final SshTarget target;
    private final int localPort;
    private final int remotePort;
    private final ByteArrayOutputStream stderr = new ByteArrayOutputStream();
    private Process process;
    private volatile boolean stopped;

    public SshForward(SshTarget target, int localPort, int remotePort) {
        this.target = target;
        this.localPort = localPort;
        this.remotePort = remotePort;
    }

    /** Whether nothing listens on 127.0.0.1:{@code port} now. */
    public static boolean isFree(int port) {
        try (ServerSocket s = new ServerSocket()) {
            s.setReuseAddress(true);
            s.bind(new InetSocketAddress("127.0.0.1", port));
            return true;
        } catch (IOException e) {
            return false;
        }
    }

    /** A port free on 127.0.0.1 now. */
    public static int freePort() {
        try (ServerSocket s = new ServerSocket()) {
            s.bind(new InetSocketAddress("127.0.0.1", 0));
            return s.getLocalPort();
        } catch (IOException e) {
            throw new KilnException(ExitCodes.FAILURE, "cannot find a free local port: " + e.getMessage(), e);
        }
    }

    /** The ssh command line. */
    List<String> command() {
        List<String> cmd = new ArrayList<>(List.of("ssh", "-F", "none"));
        cmd.addAll(target.sshOptions());
        cmd.addAll(List.of("-o", "ExitOnForwardFailure=yes", "-o", "ServerAliveCountMax=3", "-N",
                "-L", "127.0.0.1:" + localPort + ":127.0.0.1:" + remotePort, target.user() + "@" + target.host()));
        return cmd;
    }

    /**
     * Starts ssh and returns once the local port accepts connections.
     *
     * @throws KilnException when ssh cannot run, fails (with its message), or never listens within {@code wait}
     */
    public void start(Duration wait) {
        try {
            process = new ProcessBuilder(command()).redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null")))
                    .redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
        } catch (IOException e) {
            throw new KilnException(ExitCodes.CONFIG, "cannot run ssh (apt-get install openssh-client): " + e.getMessage(), e);
        }
        Thread reader = new Thread(() -> copy(process.getErrorStream()), "kiln-ssh-stderr");
        reader.setDaemon(true);
        reader.start();
        Instant giveUp = Instant.now().plus(wait);
        while (Instant.now().isBefore(giveUp)) {
            if (!process.isAlive()) {
                throw failure(exitCode());
            }
            try (Socket s = new Socket()) {
                s.connect(new InetSocketAddress("127.0.0.1", localPort), 500);
                return;
            } catch (IOException e) {
                sleep(100);
            }
        }
        process.destroy();
        throw new KilnException(ExitCodes.TIMEOUT, "ssh did not listen on 127.0.0.1:" + localPort + " within "
                + wait.toSeconds() + " s" + errorText());
    }

    /**
     * Waits until ssh ends: normally by {@link #stop()} (returns quietly).
     *
     * @throws KilnException when ssh ended on its own (the connection dropped), with its message
     */
    public void await() {
        int code = exitCode();
        if (!stopped) {
            throw failure(code);
        }
    }

    /** Ends ssh (Ctrl-C, TERM): the forward closes, and {@link #await()} returns. */
    public void stop() {
        stopped = true;
        if (process != null) {
            process.destroy();
        }
    }

    private int exitCode() {
        try {
            return process.waitFor();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            process.destroy();
            stopped = true;
            return 0;
        }
    }

    private KilnException failure(int code) {
        String text = errorText();
        if (text.contains("Address already in use") || text.contains("cannot listen to port")) {
            return new KilnException(ExitCodes.EXISTS, "local port " + localPort + " is in use; give another as LOCAL_PORT" + text);
        }
        return new KilnException(ExitCodes.UNREACHABLE, "ssh to " + target.remotePrefix().replaceAll(":$", "") + " port "
                + target.port() + " ended (exit " + code + ")" + text);
    }

    private String errorText() {
        try {
            process.waitFor(2, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        String text;
        synchronized (stderr) {
            text = stderr.toString(StandardCharsets.UTF_8).strip();
        }
        return text.isEmpty() ? "" : ": " + text;
    }

    private void copy(InputStream in) {
        byte[] buf = new byte[4096];
        try (in) {
            int n;
            while ((n = in.read(buf)) >= 0) {
                synchronized (stderr) {
                    stderr.write(buf, 0, n);
                }
            }
        } catch (IOException e) {
            // ssh ended
        }
    }

    private static void sleep(long millis) {
        try {
            Thread.sleep(millis);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new KilnException(ExitCodes.FAILURE, "interrupted");
        }
    }
}
