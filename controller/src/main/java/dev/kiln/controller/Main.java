package dev.kiln.controller;

import dev.kiln.controller.cli.EarlyConnect;
import dev.kiln.controller.client.ClientEventLoops;
import dev.kiln.controller.config.CliEnvironment;
import dev.kiln.startup.JarServices;
import dev.kiln.startup.NettyProperties;
import dev.kiln.tls.GrpcTls;

import java.util.Set;

/** The {@code kiln} command's entry point. */
public final class Main {

    /**
     * Packages only `kiln ui` uses: Micronaut's HTTP server and what it brings (HTTP, routing,
     * runtime, scheduling, reactive converters) and the dashboard itself. Every other command
     * leaves their services out ({@link JarServices#install(Set)}), so the HTTP server costs
     * their start-up nothing (docs/performance.md).
     */
    public static final Set<String> UI_ONLY_PACKAGES = Set.of(
            "io.micronaut.http.*", "io.micronaut.web.*", "io.micronaut.buffer.*", "io.micronaut.runtime.*",
            "io.micronaut.scheduling.*", "io.micronaut.logging.*", "io.micronaut.context.time",
            "io.micronaut.context.propagation.*", "io.micronaut.aop.internal", "io.micronaut.core.async.*", "io.micronaut.json.*", "reactor.*",
            "dev.kiln.controller.ui");

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
        // The connection is the longer of the two paths to an agent's answer (BoringSSL's load,
        // the channel, the handshakes), so it starts first; neither piece touches Micronaut, and
        // JarServices comes before Micronaut reads its service lists (docs/performance.md).
        // Most commands talk to an agent; the rest run long enough for the loader to finish.
        GrpcTls.preload();
        CliEnvironment env = CliEnvironment.system();
        // The agent's handshakes while Micronaut and picocli start (EarlyConnect says when).
        EarlyConnect.start(env, args);
        JarServices.install(args.length > 0 && args[0].equals("ui") ? Set.of() : UI_ONLY_PACKAGES);
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
