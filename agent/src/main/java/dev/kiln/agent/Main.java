package dev.kiln.agent;

import dev.kiln.micronaut.JarServices;
import dev.kiln.netty.NettyProperties;

/** kiln-agent's entry point. */
public final class Main {

    private Main() {
    }

    public static void main(String[] args) {
        NettyProperties.applyDefaults();
        JarServices.install();
        int code = new AgentLauncher(System.getenv(), System.err).run();
        if (code != 0) {
            System.exit(code);
        }
    }
}
