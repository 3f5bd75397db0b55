package dev.kiln.agent.tls;

import dev.kiln.agent.config.TlsSettings;
import dev.kiln.tls.GrpcTls;
import io.grpc.ServerBuilder;
import io.grpc.netty.NettyServerBuilder;
import io.micronaut.context.BeanProvider;
import io.micronaut.context.event.BeanCreatedEvent;
import io.micronaut.context.event.BeanCreatedEventListener;
import io.netty.handler.ssl.SslContext;
import jakarta.inject.Singleton;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.security.GeneralSecurityException;

/**
 * Puts mutual TLS on the gRPC server Micronaut builds. There is no plaintext fallback: if the
 * server builder is not Netty's, start-up fails rather than serving without TLS.
 */
@Singleton
public final class GrpcTlsConfigurer implements BeanCreatedEventListener<ServerBuilder<?>> {

    private static final Logger LOG = LoggerFactory.getLogger(GrpcTlsConfigurer.class);

    private final TlsSettings tls;
    private final BeanProvider<ServerIdentity> identity;

    public GrpcTlsConfigurer(TlsSettings tls, BeanProvider<ServerIdentity> identity) {
        this.tls = tls;
        this.identity = identity;
    }

    @Override
    public ServerBuilder<?> onCreated(BeanCreatedEvent<ServerBuilder<?>> event) {
        ServerBuilder<?> builder = event.getBean();
        if (!(builder instanceof NettyServerBuilder netty)) {
            throw new IllegalStateException("gRPC server builder is " + builder.getClass().getName()
                    + ", not Netty's; refusing to serve without mutual TLS");
        }
        netty.sslContext(serverContext());
        LOG.info("gRPC server TLS: {}", GrpcTls.describe());
        return netty;
    }

    /**
     * A bootstrapped or enrolled agent serves through {@link ServerIdentity}'s key manager, which
     * enrollment switches while the server runs; any other through {@link MutualTls} as before.
     */
    private SslContext serverContext() {
        ServerIdentity id = identity.get();
        if (id.mode() == ServerIdentity.Mode.STATIC) {
            return MutualTls.serverContext(tls);
        }
        try {
            return GrpcTls.server(GrpcTls.provider(), id.keyManager(), id.fleetCa());
        } catch (GeneralSecurityException | IOException e) {
            throw new IllegalArgumentException("the TLS material cannot be used: " + e.getMessage(), e);
        }
    }
}
