package dev.kiln.controller.client;

import dev.kiln.controller.ExitCodes;
import dev.kiln.controller.KilnException;
import dev.kiln.controller.config.KilnPaths;
import dev.kiln.controller.pki.FleetInit;
import io.grpc.netty.GrpcSslContexts;
import io.netty.handler.ssl.SslContext;

import javax.net.ssl.SSLException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * The controller's side of mutual TLS: its client certificate and key, and the fleet CA that
 * agents' certificates must chain to.
 *
 * @param ca   fleet CA certificate (PEM)
 * @param cert client certificate (PEM)
 * @param key  client key (PKCS#8 PEM)
 */
public record ClientTls(Path ca, Path cert, Path key) {

    /** The controller's own material from {@code kiln init}. */
    public static ClientTls of(KilnPaths paths) {
        if (!Files.exists(paths.caCert()) || !Files.exists(paths.clientCert()) || !Files.exists(paths.clientKey())) {
            throw FleetInit.notInitialised(paths);
        }
        return new ClientTls(paths.caCert(), paths.clientCert(), paths.clientKey());
    }

    /** Builds the client TLS context. */
    public SslContext sslContext() {
        try {
            return GrpcSslContexts.forClient()
                    .trustManager(ca.toFile())
                    .keyManager(cert.toFile(), key.toFile())
                    .build();
        } catch (SSLException | IllegalArgumentException e) {
            throw new KilnException(ExitCodes.CONFIG, "cannot use the controller's TLS material (" + cert + ", "
                    + key + ", " + ca + "): " + e.getMessage(), e);
        }
    }
}
