package dev.kiln.agent;

import dev.kiln.startup.JarServices;
import dev.kiln.startup.NettyProperties;
import io.micronaut.core.optim.StaticOptimizations;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URL;
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
            "io.micronaut.health", "io.micronaut.retry.annotation", "io.micronaut.retry.intercept",
            // @Mapper, @Refreshable and @ThreadLocal beans, i18n messages, @Async and @Scheduled methods
            "io.micronaut.runtime.beans", "io.micronaut.runtime.context.scope.refresh", "io.micronaut.runtime.context.scope",
            "io.micronaut.runtime.context", "io.micronaut.scheduling.async", "io.micronaut.scheduling.processor",
            // binding of HTTP request bodies
            "io.micronaut.http.bind.binders");

    /**
     * The list of Micronaut AOT's optimisation loaders in the agent's jar (written at package time
     * by src/aot/MicronautAot.java), in place of their {@code META-INF/services} registration.
     */
    public static final String AOT_OPTIMIZATIONS = "dev/kiln/agent/aot/optimizations";

    private Main() {
    }

    public static void main(String[] args) {
        NettyProperties.applyDefaults();
        installAotOptimizations();
        int code = new AgentLauncher(System.getenv(), System.err).run();
        if (code != 0) {
            System.exit(code);
        }
    }

    /**
     * Hands Micronaut the optimisations AOT computed at package time (the service lists above all),
     * before anything starts Micronaut; nothing when running from classes, not the jar (tests).
     */
    static void installAotOptimizations() {
        URL list = Main.class.getClassLoader().getResource(AOT_OPTIMIZATIONS);
        if (list == null) {
            return;
        }
        try {
            for (String name : JarServices.serviceFileNames(list)) {
                StaticOptimizations.Loader<?> loader = (StaticOptimizations.Loader<?>) Class.forName(name)
                        .getDeclaredConstructor().newInstance();
                StaticOptimizations.set(loader.load());
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + AOT_OPTIMIZATIONS + " from the kiln-agent jar: " + e.getMessage(), e);
        } catch (ReflectiveOperationException e) {
            throw new IllegalStateException("a Micronaut AOT optimisation of the kiln-agent jar cannot be created: " + e, e);
        }
    }
}
