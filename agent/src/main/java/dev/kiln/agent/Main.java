package dev.kiln.agent;

import dev.kiln.netty.NettyProperties;

import java.util.Set;

/** kiln-agent's entry point. */
public final class Main {

    /**
     * Packages of Micronaut modules that micronaut-runtime brings onto the agent's class path and
     * that the agent never uses (it serves gRPC and SSH, no HTTP, and registers with no discovery
     * service): Micronaut AOT leaves their services out of the jar's service lists at build time
     * (src/aot/MicronautAot.java). Fewer classes loaded and less memory resident at every start
     * (docs/performance.md).
     * {@code io.micronaut.http.resource} stays: Micronaut gRPC's server configuration needs its
     * {@code ResourceResolver}.
     */
    public static final Set<String> UNUSED_MICRONAUT_PACKAGES = Set.of(
            // HTTP messages, codecs, binding, forms, TLS settings and HAL resources of Micronaut's HTTP
            "io.micronaut.http", "io.micronaut.http.bind", "io.micronaut.http.body", "io.micronaut.http.codec",
            "io.micronaut.http.converters", "io.micronaut.http.expression", "io.micronaut.http.form",
            "io.micronaut.http.hateoas", "io.micronaut.http.ssl", "io.micronaut.http.uri", "io.micronaut.http.util",
            "io.micronaut.runtime.http.codec", "io.micronaut.runtime.http.scope",
            // service discovery, distributed configuration, DigitalOcean's instance metadata
            "io.micronaut.discovery", "io.micronaut.discovery.config", "io.micronaut.discovery.cloud.digitalocean",
            // heartbeats to a discovery service; @Retryable and @Recoverable
            "io.micronaut.health", "io.micronaut.retry.annotation", "io.micronaut.retry.intercept");

    private Main() {
    }

    public static void main(String[] args) {
        NettyProperties.applyDefaults();
        int code = new AgentLauncher(System.getenv(), System.err).run();
        if (code != 0) {
            System.exit(code);
        }
    }
}
