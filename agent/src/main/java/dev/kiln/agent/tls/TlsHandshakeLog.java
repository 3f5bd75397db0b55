package dev.kiln.agent.tls;

import io.netty.channel.Channel;
import io.netty.channel.ChannelHandler;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.socket.nio.NioServerSocketChannel;
import io.netty.handler.ssl.NotSslRecordException;
import io.netty.handler.ssl.SslHandler;
import io.netty.util.NetUtil;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.nio.channels.ClosedChannelException;
import java.security.cert.CertificateException;
import java.util.Locale;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Logs every TLS handshake the gRPC server fails, with the peer's address and why: a refused
 * client ("refused TLS client 10.0.0.5:40112: certificate 'CN=…' expired at …") at WARN, any
 * other failure (the client ended the handshake with an alert, closed the connection first, or
 * spoke no TLS) at INFO. gRPC
 * itself says nothing of these above its debug level, so without this an operator (or a test)
 * cannot tell a refusal by the agent from a client that failed on its own side.
 *
 * <p>It watches from the server channel: {@link #newServerChannel()} makes the gRPC server's
 * listening channel, which puts a watcher in front of each accepted connection; once the
 * connection's {@link SslHandler} is in place, the watcher follows its handshake and steps aside.
 */
public final class TlsHandshakeLog {

    private static final Logger LOG = LoggerFactory.getLogger(TlsHandshakeLog.class);

    /** An alert the peer sent, in the JDK's words or BoringSSL's. */
    private static final Pattern RECEIVED_ALERT = Pattern.compile(
            "Received fatal alert: (\\w+)|(?:SSLV3|TLSV1|TLSV1_3)_ALERT_(\\w+)");

    /** The handshake failure of a client that sent an empty certificate list, in the JDK's words or BoringSSL's. */
    private static final Pattern NO_CERTIFICATE = Pattern.compile(
            "Empty client certificate chain|PEER_DID_NOT_RETURN_A_CERTIFICATE");

    private static final ChannelHandler ACCEPTOR = new Acceptor();

    private TlsHandshakeLog() {
    }

    /** The gRPC server's listening channel (NIO), whose accepted connections have their handshakes logged. */
    public static NioServerSocketChannel newServerChannel() {
        NioServerSocketChannel channel = new NioServerSocketChannel();
        // First in the pipeline: it sees each accepted connection before the server bootstrap sets it up.
        channel.pipeline().addFirst("kiln-tls-handshake-log", ACCEPTOR);
        return channel;
    }

    /**
     * What the log says of a failed handshake with {@code peer}: the refusal's reason when the
     * agent refused the client, else the failure as the client caused it.
     */
    static Outcome describe(String peer, Throwable failure) {
        for (Throwable t = failure; t != null; t = t.getCause()) {
            if (t instanceof CertificateException && t.getMessage() != null) {
                // Only the agent's own certificate check throws these on the server's side.
                return new Outcome(true, "refused TLS client " + peer + ": " + t.getMessage());
            }
        }
        for (Throwable t = failure; t != null; t = t.getCause()) {
            String message = t.getMessage() == null ? "" : t.getMessage();
            if (NO_CERTIFICATE.matcher(message).find()) {
                return new Outcome(true, "refused TLS client " + peer + ": it presented no certificate");
            }
            Matcher alert = RECEIVED_ALERT.matcher(message);
            if (alert.find()) {
                String name = (alert.group(1) != null ? alert.group(1) : alert.group(2)).toLowerCase(Locale.ROOT);
                return new Outcome(false, "TLS handshake with " + peer + " failed: the client ended it with the alert "
                        + name + (name.contains("certificate") || name.equals("unknown_ca")
                        ? " (does it trust this agent's certificate and name?)" : ""));
            }
        }
        for (Throwable t = failure; t != null; t = t.getCause()) {
            if (t instanceof ClosedChannelException) {
                return new Outcome(false, "TLS handshake with " + peer + " failed: the client closed the connection first");
            }
            if (t instanceof NotSslRecordException) {
                // Its message holds the whole first read in hex: not for the log.
                return new Outcome(false, "TLS handshake with " + peer + " failed: the client does not speak TLS");
            }
        }
        String what = failure.toString();
        return new Outcome(false, "TLS handshake with " + peer + " failed: "
                + (what.length() > 300 ? what.substring(0, 300) + "…" : what));
    }

    /**
     * One log line.
     *
     * @param refused whether the agent refused the client (WARN), rather than the handshake failing otherwise (INFO)
     * @param line    the line
     */
    record Outcome(boolean refused, String line) {
    }

    /** A peer as address and port ("[::1]:40112" for IPv6, RFC 5952's short form). */
    static String address(SocketAddress address) {
        return address instanceof InetSocketAddress inet && !inet.isUnresolved()
                ? NetUtil.toSocketAddressString(inet) : String.valueOf(address);
    }

    /** On the listening channel: gives each accepted connection a {@link Watcher}. */
    @ChannelHandler.Sharable
    private static final class Acceptor extends ChannelInboundHandlerAdapter {
        @Override
        public void channelRead(ChannelHandlerContext ctx, Object msg) {
            if (msg instanceof Channel accepted) {
                accepted.pipeline().addFirst(new Watcher());
            }
            ctx.fireChannelRead(msg);
        }
    }

    /**
     * At the head of a connection's pipeline, where the client's first bytes pass: by then gRPC
     * has put the {@link SslHandler} in place, and its handshake is followed from there.
     */
    private static final class Watcher extends ChannelInboundHandlerAdapter {
        @Override
        public void channelRead(ChannelHandlerContext ctx, Object msg) {
            SslHandler tls = ctx.pipeline().get(SslHandler.class);
            ctx.fireChannelRead(msg);
            if (tls == null) {
                return; // not yet: try again with the next bytes
            }
            String peer = address(ctx.channel().remoteAddress());
            tls.handshakeFuture().addListener(done -> {
                if (!done.isSuccess()) {
                    Outcome outcome = describe(peer, done.cause());
                    if (outcome.refused()) {
                        LOG.warn(outcome.line());
                    } else {
                        LOG.info(outcome.line());
                    }
                }
            });
            if (ctx.pipeline().context(this) != null) {
                ctx.pipeline().remove(this);
            }
        }
    }
}
