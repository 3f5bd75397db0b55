package dev.kiln.agent.serve;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;

class CipherWarmUpTest {

    /** The warm-up's packets are real SSH AES-GCM packets: each one's tag verifies and its payload comes back. */
    @Test
    void encryptsAndDecryptsAsTheTransportDoes() {
        assertDoesNotThrow(() -> CipherWarmUp.run(200, CipherWarmUp.PACKET_BYTES));
    }
}
