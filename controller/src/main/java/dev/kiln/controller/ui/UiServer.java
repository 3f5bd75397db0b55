package dev.kiln.controller.ui;

import io.micronaut.context.ApplicationContext;
import io.micronaut.runtime.server.EmbeddedServer;

import java.util.Map;

/**
 * The dashboard's HTTP server: Micronaut's Netty server in an application context of its own,
 * which exists only while `kiln ui` runs. The CLI's beans reach it through {@link Dashboard}.
 */
final class UiServer implements AutoCloseable {

    private final ApplicationContext context;
    private final EmbeddedServer server;

    private UiServer(ApplicationContext context, EmbeddedServer server) {
        this.context = context;
        this.server = server;
    }

    /** Starts serving on {@code bind}:{@code port} (0: any free port). */
    static UiServer start(String bind, int port, Dashboard dashboard, UiAccess access, UiAudit audit) {
        ApplicationContext context = ApplicationContext.builder()
                .banner(false)
                .deduceEnvironment(false)
                .properties(Map.of(
                        "micronaut.server.host", bind,
                        "micronaut.server.port", port == 0 ? -1 : port,
                        // Nothing the dashboard takes is larger; actions carry their parameters in the URL.
                        "micronaut.server.max-request-size", 65536))
                .singletons(dashboard, access, audit)
                .start();
        try {
            EmbeddedServer server = context.getBean(EmbeddedServer.class);
            server.start();
            access.listeningOn(server.getPort());
            return new UiServer(context, server);
        } catch (RuntimeException e) {
            context.close();
            throw e;
        }
    }

    int port() {
        return server.getPort();
    }

    @Override
    public void close() {
        server.stop();
        context.close();
    }
}
