package dev.kiln.controller;

import dev.kiln.controller.cli.EarlyConnect;
import dev.kiln.controller.client.ClientEventLoops;
import dev.kiln.controller.config.CliEnvironment;
import dev.kiln.micronaut.JarServices;
import dev.kiln.netty.NettyProperties;
import dev.kiln.tls.GrpcTls;

/** The {@code kiln} command's entry point. */
public final class Main {

    private Main() {
    }

    public static void main(String[] args) {
        if (isVersion(args)) {
            // Answered before the Micronaut context and picocli load: the same line as
            // KilnCommand.VersionProvider, in a fraction of the time.
            System.out.println("kiln " + Version.get());
            return;
        }
        NettyProperties.applyDefaults();
        JarServices.install();
        // Most commands talk to an agent; the rest run long enough for the loader to finish.
        GrpcTls.preload();
        CliEnvironment env = CliEnvironment.system();
        // The agent's handshakes while Micronaut and picocli start (EarlyConnect says when).
        EarlyConnect.start(env, args);
        int code = KilnCli.run(env, args);
        EarlyConnect.close();
        // No event loop thread may still sit in epoll_wait when the JVM exits, or the exit
        // itself waits up to 0.3 s for it (ClientEventLoops says why).
        ClientEventLoops.shutdown();
        System.exit(code);
    }

    /** Whether the command line asks only for the version ({@code --version} or {@code -V}). */
    static boolean isVersion(String[] args) {
        return args.length == 1 && (args[0].equals("--version") || args[0].equals("-V"));
    }
}
