package dev.kiln.agent.serve;

import org.apache.sshd.client.ClientBuilder;
import org.apache.sshd.client.SshClient;
import org.apache.sshd.client.session.ClientSession;
import org.apache.sshd.common.NamedFactory;
import org.apache.sshd.common.kex.BuiltinDHFactories;
import org.apache.sshd.common.kex.KexProposalOption;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The key exchanges the embedded server offers, each negotiated by a real client: OpenSSH's for
 * those it has, MINA SSHD's own client for ML-KEM (OpenSSH has it from 9.9, where it is the default;
 * this machine's is 9.2). The server must offer only what it can run: with a BouncyCastle older than
 * the one MINA SSHD was built against (1.82 against 1.86), it offered mlkem768x25519-sha256 without
 * being able to compute it, so a client preferring it could not connect.
 */
class SshKeyExchangeTest {

    @TempDir
    Path tmp;
    SshFixture f;

    @BeforeEach
    void start() throws Exception {
        f = new SshFixture(tmp);
        Files.writeString(f.outputs.resolve("file.txt"), "served\n");
        f.start();
    }

    @AfterEach
    void stop() {
        f.close();
    }

    @Test
    void openSshNegotiatesEveryKeyExchangeItSharesWithTheServer() throws Exception {
        // The server's list (SshServer); OpenSSH 9.2 has all but mlkem768x25519-sha256 (9.9 and later).
        List<String> ours = List.of("mlkem768x25519-sha256", "sntrup761x25519-sha512@openssh.com",
                "sntrup761x25519-sha512", "curve25519-sha256", "curve25519-sha256@libssh.org");
        List<String> clients = SshFixture.run(List.of("ssh", "-Q", "kex"), 30).out().lines().toList();
        List<String> shared = ours.stream().filter(clients::contains).toList();
        assertTrue(shared.contains("sntrup761x25519-sha512@openssh.com") && shared.contains("curve25519-sha256"),
                "client offers " + clients);
        // What the server offers, as the client logs the server's KEXINIT: all five, whatever this client knows.
        List<String> debug = new ArrayList<>(f.sshOptions(f.ownerKey));
        debug.set(debug.indexOf("LogLevel=ERROR"), "LogLevel=DEBUG3");
        SshFixture.Run offer = f.sshWith(debug, "owner", "sha256sum", "/outputs/file.txt");
        String proposal = offer.err().substring(offer.err().indexOf("peer server KEXINIT proposal"));
        String offered = proposal.lines().filter(l -> l.contains("KEX algorithms: ")).findFirst().orElseThrow();
        // (less the extension markers: ext-info-s, kex-strict-s-v00@openssh.com)
        assertEquals(ours, java.util.Arrays.stream(offered.substring(offered.indexOf("KEX algorithms: ") + 16).trim()
                .split(",")).filter(k -> !k.startsWith("ext-info-") && !k.startsWith("kex-strict-")).toList(), offered);
        for (String kex : shared) {
            List<String> opts = new ArrayList<>(f.sshOptions(f.ownerKey));
            opts.set(opts.indexOf("LogLevel=ERROR"), "LogLevel=DEBUG"); // ssh names the key exchange it agreed on
            opts.addAll(List.of("-o", "KexAlgorithms=" + kex, "-o", "HostKeyAlgorithms=ssh-ed25519"));
            SshFixture.Run r = f.sshWith(opts, "owner", "sha256sum", "/outputs/file.txt");
            assertEquals(0, r.code(), kex + ": " + r);
            assertTrue(r.err().contains("kex: algorithm: " + kex), kex + ": " + r.err());
            assertTrue(r.out().contains("file.txt"), kex + ": " + r);
        }
    }

    @Test
    void aClientThatChoosesMlKemConnects() throws Exception {
        for (BuiltinDHFactories kex : List.of(BuiltinDHFactories.mlkem768x25519, BuiltinDHFactories.sntrup761x25519_openssh)) {
            try (SshClient client = SshClient.setUpDefaultClient()) {
                client.setKeyExchangeFactories(NamedFactory.setUpTransformedFactories(false, List.of(kex), ClientBuilder.DH2KEX));
                client.start();
                try (ClientSession session = f.minaSession(client, "owner", f.ownerKey)) {
                    assertEquals(kex.getName(), session.getNegotiatedKexParameter(KexProposalOption.ALGORITHMS));
                    String out = session.executeRemoteCommand("sha256sum /outputs/file.txt");
                    assertTrue(out.contains("file.txt"), kex + ": " + out);
                }
            }
        }
    }
}
