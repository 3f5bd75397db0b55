package dev.kiln.agent.serve;

import org.apache.sshd.client.SshClient;
import org.apache.sshd.client.session.ClientSession;
import org.apache.sshd.core.CoreModuleProperties;
import org.apache.sshd.sftp.client.SftpClient;
import org.apache.sshd.sftp.client.SftpClientFactory;
import org.apache.sshd.sftp.SftpModuleProperties;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Reads as clients make them, against {@link ServeSftp}'s read path, which reads a file's bytes
 * straight into packets of the client's packet size (MINA splits and copies what does not fit the
 * window). Files whose sizes fall around the packet edges of a read: OpenSSH's packets are 32,768
 * bytes, the first of a reply holds 32,755 bytes of data after SSH_FXP_DATA's 13-byte header, and
 * MINA's largest read is 64,512 bytes. Read by OpenSSH's sftp, and by MINA's client with 8 KiB
 * packets (a reply in up to 8 of them), reads larger than the server's largest, and a window
 * smaller than one reply, so that replies also meet the window's edge.
 */
class SftpReadTest {

    private static final long[] SIZES = {0, 1, 8_178, 8_179, 32_754, 32_755, 32_756, 64_511, 64_512, 64_513, 1_000_003};

    @TempDir
    Path tmp;
    SshFixture f;

    @BeforeEach
    void start() throws Exception {
        f = new SshFixture(tmp);
        for (int i = 0; i < SIZES.length; i++) {
            SshFixture.randomFile(f.outputs.resolve("f" + SIZES[i] + ".bin"), SIZES[i], 40 + i);
        }
        f.start();
    }

    @AfterEach
    void stop() {
        f.close();
    }

    @Test
    void openSshSftpGetsEveryByte() throws Exception {
        Path local = Files.createDirectories(tmp.resolve("local"));
        StringBuilder batch = new StringBuilder();
        for (long size : SIZES) {
            batch.append("get /outputs/f").append(size).append(".bin ").append(local.resolve("f" + size + ".bin")).append('\n');
        }
        SshFixture.Run r = f.sftp(f.readerKey, "reader", batch.toString());
        assertEquals(0, r.code(), r.toString());
        for (long size : SIZES) {
            assertEquals(SshFixture.sha256(f.outputs.resolve("f" + size + ".bin")), SshFixture.sha256(local.resolve("f" + size + ".bin")),
                    "f" + size + ".bin");
        }
    }

    @Test
    @Timeout(value = 120, threadMode = Timeout.ThreadMode.SEPARATE_THREAD) // a malformed reply leaves MINA's client waiting
    void minaClientWithLargeReadsAndASmallWindowGetsEveryByteAndTheEnd() throws Exception {
        try (SshClient client = SshClient.setUpDefaultClient()) {
            CoreModuleProperties.MAX_PACKET_SIZE.set(client, 8_192L);
            CoreModuleProperties.WINDOW_SIZE.set(client, 48_000L);
            client.start();
            try (ClientSession session = f.minaSession(client, "reader", f.readerKey)) {
                try (SftpClient sftp = SftpClientFactory.instance().createSftpClient(session)) {
                    for (int chunk : new int[]{8_179, 200_000}) {
                        for (long size : SIZES) {
                            byte[] expected = Files.readAllBytes(f.outputs.resolve("f" + size + ".bin"));
                            assertArrayEquals(expected, readAll(sftp, "/outputs/f" + size + ".bin", chunk), "f" + size + ".bin in reads of " + chunk);
                        }
                    }
                }
            }
        }
    }

    /**
     * Reads a file with reads of {@code chunk} bytes until the server says it has ended; every
     * read of a regular file is answered in full (up to the server's largest read) until its end.
     */
    private static byte[] readAll(SftpClient sftp, String path, int chunk) throws Exception {
        ByteArrayOutputStream all = new ByteArrayOutputStream();
        long size = sftp.stat(path).getSize();
        int largest = SftpModuleProperties.MAX_READDATA_PACKET_LENGTH.getRequiredDefault();
        byte[] buf = new byte[chunk];
        try (SftpClient.CloseableHandle h = sftp.open(path)) {
            long offset = 0;
            for (int n; (n = sftp.read(h, offset, buf, 0, chunk)) >= 0; offset += n) {
                assertEquals(Math.min(Math.min(chunk, largest), size - offset), n, path + ": the read at " + offset);
                all.write(buf, 0, n);
                if (n == 0) {
                    break;
                }
            }
        }
        return all.toByteArray();
    }
}
