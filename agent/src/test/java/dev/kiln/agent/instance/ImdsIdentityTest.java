package dev.kiln.agent.instance;

import dev.kiln.testkit.FreePorts;
import dev.kiln.testkit.MetadataMock;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.io.IOException;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The agent's start-up read of its identity, against AWS's metadata mock, when IMDS comes up late or never. */
class ImdsIdentityTest {

    @Test
    @Timeout(value = 120, unit = TimeUnit.SECONDS)
    void waitsForImdsThatComesUpAfterTheAgent() throws Exception {
        int port = FreePorts.loopbackPort();
        String endpoint = "http://127.0.0.1:" + port;
        CompletableFuture<InstanceIdentity> read = CompletableFuture.supplyAsync(() -> {
            try {
                return ImdsIdentity.read(endpoint, Duration.ofSeconds(60));
            } catch (IOException e) {
                throw new RuntimeException(e);
            }
        });
        // Several attempts fail (connection refused) before the mock listens.
        Thread.sleep(3 * ImdsIdentity.RETRY_DELAY.toMillis());
        assertFalse(read.isDone(), "the read gave up or answered before IMDS was up");
        try (MetadataMock mock = MetadataMock.builder().instanceId("i-0late0000000000001").region("eu-west-1")
                .loopbackPort(port).start()) {
            InstanceIdentity identity = read.get(60, TimeUnit.SECONDS);
            assertEquals("i-0late0000000000001", identity.instanceId());
            assertEquals("eu-west-1", identity.region());
        }
    }

    @Test
    @Timeout(value = 120, unit = TimeUnit.SECONDS)
    void givesUpWithAMessageThatSaysWhatToDo() {
        String endpoint = "http://127.0.0.1:" + FreePorts.loopbackPort();
        IOException e = assertThrows(IOException.class, () -> ImdsIdentity.read(endpoint, Duration.ofSeconds(2)));
        assertTrue(e.getMessage().startsWith("cannot read instance identity from IMDSv2 at " + endpoint + " within PT2S"),
                e.getMessage());
        assertTrue(e.getMessage().contains("use kiln.mode: local off EC2"), e.getMessage());
    }
}
