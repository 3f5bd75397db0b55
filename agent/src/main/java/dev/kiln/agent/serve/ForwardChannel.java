package dev.kiln.agent.serve;

import org.apache.sshd.client.future.DefaultOpenFuture;
import org.apache.sshd.client.future.OpenFuture;
import org.apache.sshd.common.Closeable;
import org.apache.sshd.common.FactoryManager;
import org.apache.sshd.common.SshConstants;
import org.apache.sshd.common.channel.ChannelAsyncOutputStream;
import org.apache.sshd.common.channel.exception.SshChannelOpenException;
import org.apache.sshd.common.forward.ChannelToPortHandler;
import org.apache.sshd.common.forward.ForwardingTunnelEndpointsProvider;
import org.apache.sshd.common.future.CloseFuture;
import org.apache.sshd.common.future.DefaultCloseFuture;
import org.apache.sshd.common.io.IoConnectFuture;
import org.apache.sshd.common.io.IoConnector;
import org.apache.sshd.common.io.IoHandler;
import org.apache.sshd.common.io.IoSession;
import org.apache.sshd.common.io.IoWriteFuture;
import org.apache.sshd.common.session.Session;
import org.apache.sshd.common.util.ExceptionUtils;
import org.apache.sshd.common.util.Readable;
import org.apache.sshd.common.util.buffer.Buffer;
import org.apache.sshd.common.util.closeable.AbstractCloseable;
import org.apache.sshd.common.util.net.SshdSocketAddress;
import org.apache.sshd.common.util.threads.CloseableExecutorService;
import org.apache.sshd.common.util.threads.ThreadUtils;
import org.apache.sshd.server.channel.AbstractServerChannel;
import org.apache.sshd.server.forward.TcpForwardingFilter;

import java.io.IOException;
import java.net.ConnectException;
import java.util.Collections;

/**
 * A {@code direct-tcpip} channel ({@code ssh -L}) as MINA's {@code TcpipServerChannel} (the
 * session's forwarding filter decides, the target is read again once each read is sent), except
 * that each read from the target is copied once, into a packet buffer ({@link ChannelDataPackets})
 * that MINA encrypts and sends in place. MINA's channel copies it into a buffer of its own and then
 * into a packet: two allocations and copies of every byte forwarded, which keep the agent's small
 * young generation collecting. MINA offers no hook on that path, so the channel is a small
 * replacement. As only one packet is in flight, the next read reuses its buffer. Data from the
 * client goes to the target as in MINA.
 */
class ForwardChannel extends AbstractServerChannel implements ForwardingTunnelEndpointsProvider {

    /** The pool name in the names of the threads that close a forward's connector (MINA prefixes "sshd-"). */
    static final String CLOSER_THREADS = "kiln-forward-close";

    private volatile IoConnector connector;
    private volatile ChannelToPortHandler port;
    private ChannelAsyncOutputStream out;
    private SshdSocketAddress tunnelEntrance;
    private SshdSocketAddress tunnelExit;
    /** The packet buffer of the last read sent, reused for the next read (only one is in flight). */
    private volatile Buffer spare;

    ForwardChannel(CloseableExecutorService executor) {
        super("", Collections.emptyList(), executor);
    }

    @Override
    public SshdSocketAddress getTunnelEntrance() {
        return tunnelEntrance;
    }

    @Override
    public SshdSocketAddress getTunnelExit() {
        return tunnelExit;
    }

    @Override
    public void handleWindowAdjust(Buffer buffer) throws IOException {
        super.handleWindowAdjust(buffer);
        if (out != null) {
            out.onWindowExpanded();
        }
    }

    /** The request names host, port, originator address and port; the filter decides before anything connects. */
    @Override
    protected OpenFuture doInit(Buffer buffer) {
        String host = buffer.getString();
        int targetPort = buffer.getInt();
        buffer.getString(); // the originator's address and port: not used
        buffer.getInt();
        SshdSocketAddress address = new SshdSocketAddress(host, targetPort);
        tunnelEntrance = address;
        tunnelExit = address;

        Session session = getSession();
        FactoryManager manager = session.getFactoryManager();
        TcpForwardingFilter filter = manager.getTcpForwardingFilter();
        OpenFuture f = new DefaultOpenFuture(this, this);
        if (filter == null || !filter.canConnect(TcpForwardingFilter.Type.Direct, address, session)) {
            try {
                f.setException(new SshChannelOpenException(getChannelId(), SshConstants.SSH_OPEN_ADMINISTRATIVELY_PROHIBITED,
                        "Connection denied"));
            } finally {
                super.close(true);
            }
            return f;
        }

        out = new ChannelAsyncOutputStream(this, SshConstants.SSH_MSG_CHANNEL_DATA) {
            /** Once everything handed over is sent, the channel's EOF follows. */
            @Override
            protected CloseFuture doCloseGracefully() {
                DefaultCloseFuture result = new DefaultCloseFuture(getChannelId(), futureLock);
                super.doCloseGracefully().addListener(p -> {
                    try {
                        IoWriteFuture eofSent = sendEof();
                        if (eofSent != null) {
                            eofSent.addListener(e -> result.setClosed());
                            return;
                        }
                    } catch (Exception e) {
                        getSession().exceptionCaught(e);
                    }
                    result.setClosed();
                });
                return result;
            }
        };
        connector = manager.getIoServiceFactory().createConnector(new TargetHandler());
        connector.connect(address.toInetSocketAddress(), null, null).addListener(c -> connected(f, c));
        return f;
    }

    private void connected(OpenFuture f, IoConnectFuture c) {
        try {
            if (c.isConnected()) {
                IoSession target = c.getSession();
                port = new ChannelToPortHandler(target, this);
                String event = target.toString();
                try {
                    signalChannelOpenSuccess();
                    f.setOpened();
                    if (f.isCanceled()) {
                        close(false).addListener(x -> f.getCancellation().setCanceled());
                    } else {
                        target.resumeRead(); // the open confirmation is out: the target's data may follow
                    }
                } catch (Throwable t) {
                    Throwable e = ExceptionUtils.peelException(t);
                    event = e.getClass().getSimpleName();
                    signalChannelOpenFailure(e);
                    f.setException(e);
                } finally {
                    notifyStateChanged(event);
                }
                return;
            }
            Throwable problem = ExceptionUtils.peelException(c.getException());
            if (problem != null) {
                signalChannelOpenFailure(problem);
                notifyStateChanged(problem.getClass().getSimpleName());
                try {
                    f.setException(problem instanceof ConnectException
                            ? new SshChannelOpenException(getChannelId(), SshConstants.SSH_OPEN_CONNECT_FAILED, problem.getMessage(), problem)
                            : problem);
                } finally {
                    close(true);
                }
            }
        } catch (RuntimeException e) {
            Throwable problem = ExceptionUtils.peelException(e);
            signalChannelOpenFailure(problem);
            try {
                f.setException(problem);
            } finally {
                notifyStateChanged(problem.getClass().getSimpleName());
            }
        }
    }

    @Override
    protected boolean mayWrite() {
        return !isClosed(); // the output stream is flushed while closing
    }

    @Override
    public void handleEof() throws IOException {
        super.handleEof();
        ChannelToPortHandler p = port;
        if (p != null) {
            p.handleEof();
        }
    }

    @Override
    protected Closeable getInnerCloseable() {
        IoConnector c = connector;
        if (c == null) { // refused, or closed before the filter decided: nothing was connected
            return builder().close(out).close(super.getInnerCloseable()).build();
        }
        return builder()
                .close(out)
                .close(super.getInnerCloseable())
                .close(new AbstractCloseable() {
                    // The connector is closed on a thread of its own, never on the I/O thread closing the channel.
                    private final CloseableExecutorService executor =
                            ThreadUtils.newCachedThreadPool(CLOSER_THREADS + "[" + getSession() + "]");

                    @Override
                    protected CloseFuture doCloseGracefully() {
                        executor.submit(() -> c.close(false).addListener(x -> executor.close(true)));
                        return null;
                    }

                    @Override
                    protected void doCloseImmediately() {
                        executor.submit(() -> c.close(true).addListener(x -> executor.close(true)));
                        port = null;
                        super.doCloseImmediately();
                    }
                })
                .build();
    }

    @Override
    protected void doWriteData(byte[] data, int off, long len) throws IOException {
        port.sendToPort(SshConstants.SSH_MSG_CHANNEL_DATA, data, off, len);
    }

    @Override
    protected void doWriteExtendedData(byte[] data, int off, long len) throws IOException {
        throw new UnsupportedOperationException("direct-tcpip channels carry no extended data");
    }

    /**
     * An empty packet buffer for {@code content} bytes: the one the previous read was sent in
     * when it is large enough. Reading stops while a packet is being sent, so one packet per
     * channel is in flight at a time, and a packet whose write has completed is free again.
     */
    private Buffer packetFor(int content) {
        Buffer b = spare;
        spare = null;
        return ChannelDataPackets.reuse(b, content);
    }

    /** The target's side: each read goes to the client in a packet buffer; its end ends the channel once that is sent. */
    private final class TargetHandler implements IoHandler {
        @Override
        public void sessionCreated(IoSession session) {
            session.suspendRead(); // until the open confirmation has gone to the client
        }

        @Override
        public void messageReceived(IoSession session, Readable message) throws Exception {
            if (isClosing()) {
                return;
            }
            // One packet when the client's packet size and window allow it (MINA sends it in
            // place); otherwise MINA splits it, copying as its own channel does.
            Buffer packet = packetFor(message.available());
            packet.putBuffer(message);
            session.suspendRead();
            ThreadUtils.runAsInternal(() -> out.writeBuffer(packet).addListener(w -> {
                if (w.getException() != null) {
                    session.resumeRead();
                    log.debug("messageReceived({}) closing: {}", ForwardChannel.this, w.getException().toString());
                    close(true);
                    return;
                }
                spare = packet; // sent in full: nothing refers to it any more
                session.resumeRead();
            }));
        }

        @Override
        public void sessionClosed(IoSession session) {
            close(false);
        }

        @Override
        public void exceptionCaught(IoSession session, Throwable cause) {
            log.debug("exceptionCaught({}): {}", ForwardChannel.this, cause.toString());
            close(!session.isOpen());
        }
    }
}
