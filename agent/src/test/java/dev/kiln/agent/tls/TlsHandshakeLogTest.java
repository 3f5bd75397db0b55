package dev.kiln.agent.tls;

import io.netty.handler.codec.DecoderException;
import io.netty.handler.ssl.NotSslRecordException;
import org.junit.jupiter.api.Test;

import javax.net.ssl.SSLHandshakeException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.channels.ClosedChannelException;
import java.security.cert.CertificateExpiredException;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * What the agent logs of a failed handshake, from the failures Netty hands over on OpenSSL and on
 * the JDK's TLS (their words as they are; MutualTlsTest and TlsProvidersTest see them from real
 * handshakes). A refusal by the agent is told apart from a client that gave up on its own side.
 */
class TlsHandshakeLogTest {

    private static final String PEER = "127.0.0.1:40112";

    @Test
    void aRefusedCertificateIsLoggedAsARefusalWithTheCheckersReason() {
        SSLHandshakeException jdk = new SSLHandshakeException("General SSLEngine problem");
        jdk.initCause(new CertificateExpiredException("certificate 'CN=c,O=kiln' expired at 2026-01-01T00:00:00Z"));
        assertEquals(new TlsHandshakeLog.Outcome(true,
                        "refused TLS client 127.0.0.1:40112: certificate 'CN=c,O=kiln' expired at 2026-01-01T00:00:00Z"),
                TlsHandshakeLog.describe(PEER, new DecoderException(jdk)));
    }

    @Test
    void aClientWithoutACertificateIsLoggedAsARefusalOnEitherProvider() {
        TlsHandshakeLog.Outcome expected = new TlsHandshakeLog.Outcome(true,
                "refused TLS client 127.0.0.1:40112: it presented no certificate");
        assertEquals(expected, TlsHandshakeLog.describe(PEER, new SSLHandshakeException(
                "error:100000c0:SSL routines:OPENSSL_internal:PEER_DID_NOT_RETURN_A_CERTIFICATE")));
        assertEquals(expected, TlsHandshakeLog.describe(PEER, new SSLHandshakeException("Empty client certificate chain")));
    }

    @Test
    void aClientThatEndsTheHandshakeWithAnAlertIsNotARefusal() {
        TlsHandshakeLog.Outcome expected = new TlsHandshakeLog.Outcome(false, "TLS handshake with 127.0.0.1:40112 failed: "
                + "the client ended it with the alert bad_certificate (does it trust this agent's certificate and name?)");
        assertEquals(expected, TlsHandshakeLog.describe(PEER, new SSLHandshakeException(
                "error:10000412:SSL routines:OPENSSL_internal:SSLV3_ALERT_BAD_CERTIFICATE")));
        assertEquals(expected, TlsHandshakeLog.describe(PEER, new SSLHandshakeException("Received fatal alert: bad_certificate")));
    }

    @Test
    void aClosedConnectionOrAnotherProtocolIsNotARefusalAndNotDumped() {
        assertEquals(new TlsHandshakeLog.Outcome(false, "TLS handshake with 127.0.0.1:40112 failed: "
                + "the client closed the connection first"), TlsHandshakeLog.describe(PEER, new ClosedChannelException()));
        assertEquals(new TlsHandshakeLog.Outcome(false, "TLS handshake with 127.0.0.1:40112 failed: "
                + "the client does not speak TLS"), TlsHandshakeLog.describe(PEER,
                new NotSslRecordException("not an SSL/TLS record: 474554202f20485454502f312e310d0a")));
    }

    @Test
    void peersAreWrittenAsAddressAndPort() throws Exception {
        assertEquals("127.0.0.1:40112", TlsHandshakeLog.address(new InetSocketAddress(InetAddress.getByName("127.0.0.1"), 40112)));
        assertEquals("[::1]:40112", TlsHandshakeLog.address(new InetSocketAddress(InetAddress.getByName("::1"), 40112)));
    }
}
