package dev.kiln.agent.tls;

import dev.kiln.agent.config.TlsSettings;
import dev.kiln.tls.GrpcTls;
import io.grpc.ServerBuilder;
import io.grpc.netty.NettyServerBuilder;
import io.micronaut.context.event.BeanCreatedEvent;
import io.micronaut.context.event.BeanCreatedEventListener;
import jakarta.inject.Singleton;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Puts mutual TLS on the gRPC server Micronaut builds. There is no plaintext fallback: if the
 * server builder is not Netty's, start-up fails rather than serving without TLS.
 */
@Singleton
public final class GrpcTlsConfigurer implements BeanCreatedEventListener<ServerBuilder<?>> {

    private static final Logger LOG = LoggerFactory.getLogger(GrpcTlsConfigurer.class);

    private final TlsSettings tls;

    public GrpcTlsConfigurer(TlsSettings tls) {
        this.tls = tls;
    }

    @Override
    public ServerBuilder<?> onCreated(BeanCreatedEvent<ServerBuilder<?>> event) {
        ServerBuilder<?> builder = event.getBean();
        if (!(builder instanceof NettyServerBuilder netty)) {
            throw new IllegalStateException("gRPC server builder is " + builder.getClass().getName()
                    + ", not Netty's; refusing to serve without mutual TLS");
        }
        netty.sslContext(MutualTls.serverContext(tls));
        LOG.info("gRPC server TLS: {}", GrpcTls.describe());
        return netty;
    }
}
