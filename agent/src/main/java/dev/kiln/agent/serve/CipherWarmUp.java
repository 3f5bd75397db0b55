package dev.kiln.agent.serve;

import org.apache.sshd.common.cipher.BuiltinCiphers;
import org.apache.sshd.common.cipher.Cipher;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.concurrent.atomic.AtomicBoolean;

/**
 * Compiles the SSH server's AES-GCM path before the first transfer needs it. The JDK's AES-GCM is
 * fast only where C2 has compiled its callers with the AES-CTR and GHASH intrinsics inlined; a
 * first download of large packets instead makes the per-block loops hot on their own, and they
 * are compiled without the intrinsics (tens of MB/s, for the first hundreds of MB or longer).
 * Many small packets through MINA's own cipher get the callers compiled first: about 0.2 CPU
 * seconds, once per agent, on a low-priority thread when the first SSH connection arrives (an
 * agent nobody connects to keeps its memory). {@code -Dkiln.ssh.warm-up=false} (in
 * {@code AGENT_JAVA_OPTS}) leaves it out, to compare.
 */
final class CipherWarmUp {

    private static final Logger LOG = LoggerFactory.getLogger(CipherWarmUp.class);

    /** Enough calls for C2 (its invocation threshold is 5,000 with the default flags) with room to spare. */
    static final int PACKETS = 20_000;

    /** Small, so that the calls, not the per-block loops, become hot. */
    static final int PACKET_BYTES = 512;

    private static final AtomicBoolean STARTED = new AtomicBoolean();

    private CipherWarmUp() {
    }

    /** Starts the warm-up on a daemon thread; only the first call in a JVM does anything. */
    static void startOnce() {
        if (!Boolean.parseBoolean(System.getProperty("kiln.ssh.warm-up", "true")) || !STARTED.compareAndSet(false, true)) {
            return;
        }
        Thread t = new Thread(() -> {
            try {
                long t0 = System.nanoTime();
                run(PACKETS, PACKET_BYTES);
                LOG.debug("ssh: AES-GCM warmed up in {} ms", (System.nanoTime() - t0) / 1_000_000);
            } catch (Exception e) {
                LOG.warn("ssh: warming up AES-GCM failed (transfers start slower): {}", e.toString());
            }
        }, "kiln-ssh-warm-up");
        t.setDaemon(true);
        t.setPriority(Thread.MIN_PRIORITY);
        t.start();
    }

    /**
     * Encrypts and decrypts {@code packets} packets of {@code bytes} bytes as the SSH transport
     * does (4 bytes of length as associated data, the tag after the payload), in lockstep, and
     * checks that the last payload comes back.
     *
     * @throws Exception when the cipher fails, e.g. a tag that does not verify
     */
    static void run(int packets, int bytes) throws Exception {
        byte[] key = new byte[16];
        byte[] iv = new byte[12];
        Cipher encrypt = BuiltinCiphers.aes128gcm.create();
        Cipher decrypt = BuiltinCiphers.aes128gcm.create();
        encrypt.init(Cipher.Mode.Encrypt, key, iv);
        decrypt.init(Cipher.Mode.Decrypt, key, iv);
        byte[] packet = new byte[4 + bytes + encrypt.getAuthenticationTagSize()];
        for (int i = 0; i < packets; i++) {
            java.util.Arrays.fill(packet, 4, 4 + bytes, (byte) i);
            encrypt.updateWithAAD(packet, 0, 4, bytes);
            decrypt.updateWithAAD(packet, 0, 4, bytes);
        }
        if (packets > 0 && packet[4] != (byte) (packets - 1)) {
            throw new IllegalStateException("AES-GCM did not decrypt what it encrypted");
        }
    }
}
