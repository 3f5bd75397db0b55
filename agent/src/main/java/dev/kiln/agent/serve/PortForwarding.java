package dev.kiln.agent.serve;

import org.apache.sshd.client.future.OpenFuture;
import org.apache.sshd.common.channel.Channel;
import org.apache.sshd.common.channel.ChannelListener;
import org.apache.sshd.common.channel.RequestHandler;
import org.apache.sshd.common.session.Session;
import org.apache.sshd.common.util.buffer.Buffer;
import org.apache.sshd.common.util.buffer.ByteArrayBuffer;
import org.apache.sshd.common.util.net.SshdSocketAddress;
import org.apache.sshd.server.channel.ChannelSession;
import org.apache.sshd.server.channel.ChannelSessionFactory;
import org.apache.sshd.server.forward.ForwardingFilter;
import org.apache.sshd.server.forward.TcpForwardingFilter;
import org.apache.sshd.server.forward.TcpipServerChannel;
import org.apache.sshd.common.util.threads.ThreadUtils;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.ConcurrentHashMap;
import java.util.regex.Pattern;

/**
 * What the SSH server forwards: local port forwarding ({@code ssh -L}, the {@code direct-tcpip}
 * channel) for the {@code owner} only, and only to {@code 127.0.0.1} or {@code ::1} ({@code localhost}
 * means {@code 127.0.0.1}) on a port {@link ForwardPorts} allows. Everything else is refused and
 * logged with the user, their key's fingerprint and the target: remote forwarding
 * ({@code tcpip-forward}), agent and X11 forwarding, any other host or port, and any forwarding for
 * {@code reader}. Dynamic (SOCKS) forwarding needs no rule of its own: to the server each of its
 * requests is direct-tcpip to whatever the client names. Open forwarded connections are counted
 * and can be closed at once.
 */
final class PortForwarding implements ForwardingFilter {

    private static final Logger LOG = LoggerFactory.getLogger(PortForwarding.class);

    /** An IPv6 literal as a client writes it (hex digits and colons), never a name to look up. */
    private static final Pattern IPV6_LITERAL = Pattern.compile("[0-9A-Fa-f:]+");

    /** How long a forwarded connection the client has closed may take to flush before it is cut. */
    static final java.time.Duration CLOSE_GRACE = java.time.Duration.ofSeconds(5);

    private final ForwardPorts ports;
    private final Set<Forward> open = ConcurrentHashMap.newKeySet();

    PortForwarding(ForwardPorts ports) {
        this.ports = ports;
    }

    /** The loopback address a forwarding target names: 127.0.0.1 for it and for localhost, ::1 for any spelling of it. */
    static Optional<String> loopback(String host) {
        if (host == null) {
            return Optional.empty();
        }
        String h = host.startsWith("[") && host.endsWith("]") ? host.substring(1, host.length() - 1) : host;
        if (h.equals("127.0.0.1") || h.toLowerCase(Locale.ROOT).equals("localhost")) {
            return Optional.of("127.0.0.1");
        }
        if (h.contains(":") && IPV6_LITERAL.matcher(h).matches()) {
            try {
                var address = java.net.InetAddress.getByName(h); // a literal: no lookup
                if (address instanceof java.net.Inet6Address && address.isLoopbackAddress()) {
                    return Optional.of("::1");
                }
            } catch (java.net.UnknownHostException e) {
                return Optional.empty();
            }
        }
        return Optional.empty();
    }

    @Override
    public boolean canConnect(TcpForwardingFilter.Type type, SshdSocketAddress address, Session session) {
        String target = address == null ? "?" : printable(address.getHostName()) + ":" + address.getPort();
        if (type != TcpForwardingFilter.Type.Direct) {
            return refuse(session, type.getName() + " to " + target, "only local forwarding (ssh -L) is allowed");
        }
        if (!UserKind.OWNER.userName().equals(session.getUsername())) {
            return refuse(session, "local forwarding to " + target, "only the owner may forward");
        }
        if (address == null || loopback(address.getHostName()).isEmpty()) {
            return refuse(session, "local forwarding to " + target, "only 127.0.0.1, ::1 and localhost may be reached");
        }
        Set<Integer> allowed = ports.ports();
        if (!allowed.contains(address.getPort())) {
            return refuse(session, "local forwarding to " + target, "port " + address.getPort() + " is not allowed ("
                    + (allowed.isEmpty() ? "none is" : "allowed: " + new TreeSet<>(allowed)) + "; a service's port or kiln.ssh.forward-ports)");
        }
        return true;
    }

    @Override
    public boolean canListen(SshdSocketAddress address, Session session) {
        return refuse(session, "remote forwarding (tcpip-forward) of " + (address == null ? "?"
                : printable(address.getHostName()) + ":" + address.getPort()), "remote forwarding is never allowed");
    }

    @Override
    public boolean canForwardAgent(Session session, String requestType) {
        return refuse(session, "agent forwarding (" + printable(requestType) + ")", "agent forwarding is never allowed");
    }

    @Override
    public boolean canForwardX11(Session session, String requestType) {
        return refuse(session, "X11 forwarding (" + printable(requestType) + ")", "X11 forwarding is never allowed");
    }

    private static boolean refuse(Session session, String what, String why) {
        LOG.warn("ssh: refused {} for user {} (key {}) from {}: {}", what, printable(session.getUsername()),
                Optional.ofNullable(session.getAttribute(KeyAuthenticator.KEY_FINGERPRINT)).orElse("?"),
                session.getIoSession().getRemoteAddress(), why);
        return false;
    }

    /** Forwarded connections open now. */
    int openConnections() {
        return open.size();
    }

    /** Where the open forwarded connections lead, e.g. 127.0.0.1:8888, sorted. */
    List<String> openTargets() {
        return open.stream().map(f -> f.getTunnelExit() == null ? "?" : f.getTunnelExit().getHostName() + ":"
                + f.getTunnelExit().getPort()).sorted().toList();
    }

    /**
     * Closes every forwarded connection (its client sees the end at once: the channel's EOF and
     * close go out, its TCP connection on the instance is closed); returns how many there were.
     */
    int closeConnections() {
        List<Forward> all = List.copyOf(open);
        all.forEach(f -> f.close(false));
        return all.size();
    }

    /** The channel factories: sessions that log refused agent forwarding, and direct-tcpip through this filter. */
    List<org.apache.sshd.common.channel.ChannelFactory> channelFactories() {
        return List.of(new Sessions(), new DirectTcpip());
    }

    /** Session channels as MINA's, except that an agent forwarding request reaches the filter (and its log). */
    private final class Sessions extends ChannelSessionFactory {
        @Override
        public Channel createChannel(Session session) {
            return new ChannelSession() {
                @Override
                protected RequestHandler.Result handleAgentForwardingParsed(String requestType) {
                    canForwardAgent(getSession(), requestType);
                    return RequestHandler.Result.ReplyFailure;
                }
            };
        }
    }

    /** direct-tcpip channels that connect to the loopback literal a target names, and are counted while open. */
    private final class DirectTcpip extends TcpipServerChannel.TcpipFactory {
        DirectTcpip() {
            super(TcpForwardingFilter.Type.Direct);
        }

        @Override
        public Channel createChannel(Session session) {
            return new Forward();
        }
    }

    private final class Forward extends ForwardChannel {
        Forward() {
            super(ThreadUtils.noClose(null));
            addChannelListener(new ChannelListener() {
                @Override
                public void channelOpenSuccess(Channel channel) {
                    open.add(Forward.this);
                }

                @Override
                public void channelClosed(Channel channel, Throwable reason) {
                    open.remove(Forward.this);
                }
            });
        }

        /**
         * The client has closed the channel. The close waits for data still queued for the client;
         * if the client's window is exhausted that data can never go, and the target's connection
         * would stay open until the SSH session ends: after a grace period the close is cut short.
         */
        @Override
        public void handleClose() throws IOException {
            super.handleClose();
            getSession().getFactoryManager().getScheduledExecutorService().schedule(() -> {
                if (!isClosed()) {
                    close(true);
                }
            }, CLOSE_GRACE.toMillis(), java.util.concurrent.TimeUnit.MILLISECONDS);
        }

        /**
         * The request names host, port, originator address and port. A loopback target is passed
         * on as its literal, so {@code localhost} is never looked up; anything else goes on as
         * named, for the filter to refuse.
         */
        @Override
        protected OpenFuture doInit(Buffer buffer) {
            String host = buffer.getString();
            int port = buffer.getInt();
            String originator = buffer.getString();
            int originatorPort = buffer.getInt();
            Buffer request = new ByteArrayBuffer();
            request.putString(loopback(host).orElse(host));
            request.putInt(port);
            request.putString(originator);
            request.putInt(originatorPort);
            return super.doInit(request);
        }
    }

    /** A client-given string for the log: control characters replaced, cut at 100 characters. */
    static String printable(String s) {
        if (s == null) {
            return "?";
        }
        StringBuilder b = new StringBuilder();
        for (char c : s.toCharArray()) {
            b.append(c < 0x20 || c == 0x7f ? '?' : c);
            if (b.length() > 100) {
                b.append("...");
                break;
            }
        }
        return b.toString();
    }
}
