package dev.kiln.e2e;

import dev.kiln.testkit.Prerequisites;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.util.HexFormat;
import java.util.List;
import java.util.Random;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** `kiln ssh-config`, `kiln pull` and `kiln push` against a real agent process serving over its SSH server. */
class ServingTest {

    @TempDir
    Path tmp;
    LocalFleet fleet;
    Path outputs;

    @BeforeEach
    void start() throws Exception {
        for (String tool : List.of("rsync", "ssh", "sftp", "bwrap")) {
            Prerequisites.requireCommand(tool, "apt-get install rsync openssh-client bubblewrap");
        }
        fleet = new LocalFleet(tmp);
        outputs = Files.createDirectories(tmp.resolve("outputs"));
        for (int i = 1; i <= 5; i++) {
            write(outputs.resolve("build-opus/artist/album/0" + i + ".opus"), 200_000 * i, i);
        }
        write(outputs.resolve("build-flac/artist/album/01.flac"), 500_000, 9);
        Path pub = fleet.kiln.configDir().resolve("id_ed25519.pub");
        Files.writeString(fleet.settings, """
                  ssh:
                    enabled: true
                    host: 127.0.0.1
                    port: %d
                    outputs: '%s'
                    sources: '%s'
                    owner-keys: '%s'
                    reader-keys: '%s'
                """.formatted(dev.kiln.testkit.FreePorts.loopbackPort(), outputs, tmp.resolve("sources"), pub, pub), StandardOpenOption.APPEND);
        fleet.start();
    }

    @AfterEach
    void stop() throws Exception {
        fleet.close();
    }

    @Test
    void sshConfigWritesTheHostKeySoOpenSshChecksItStrictly() throws Exception {
        Kiln.Run status = fleet.kiln.run("status", "--agent", fleet.address(), "-o", "json");
        assertEquals(0, status.exitCode(), status.toString());
        assertTrue(status.out().contains("\"ssh_host_public_key\": \"ssh-ed25519 "), status.out());

        Kiln.Run config = fleet.kiln.run("ssh-config", "--agent", fleet.address());
        assertEquals(0, config.exitCode(), config.toString());
        assertTrue(config.out().startsWith("Host kiln-127.0.0.1\n"), config.out());
        assertTrue(config.out().contains("  User owner\n"), config.out());
        assertTrue(config.out().contains("  StrictHostKeyChecking yes\n"), config.out());
        Path known = fleet.kiln.configDir().resolve("known_hosts");
        assertTrue(Files.readString(known).startsWith("[127.0.0.1]:"), Files.readString(known));

        // The hint on stderr is what a user pastes: save the block with the printed command, then the printed sftp.
        List<String> hint = config.err().lines().filter(l -> l.startsWith("  ")).map(String::strip).toList();
        assertEquals(2, hint.size(), config.err());
        assertTrue(hint.get(0).startsWith("kiln ssh-config --agent " + fleet.address() + " > "), hint.get(0));
        String[] save = hint.get(0).substring("kiln ".length()).split(" > ");
        Kiln.Run saved = fleet.kiln.run(save[0].split(" "));
        assertEquals(0, saved.exitCode(), saved.toString());
        Files.writeString(Path.of(save[1]), saved.out());
        assertTrue(hint.get(1).startsWith("sftp -F " + save[1] + " kiln-127.0.0.1"), hint.get(1));
        Run pasted = run(List.of("bash", "-c", hint.get(1) + " <<< 'ls /outputs'"));
        assertEquals(0, pasted.code(), pasted.toString());
        assertTrue(pasted.out().contains("build-opus"), pasted.toString());

        Path file = Files.writeString(tmp.resolve("ssh_config"), config.out());
        Path batch = Files.writeString(tmp.resolve("batch"), "ls /outputs\nget /outputs/build-flac/artist/album/01.flac " + tmp.resolve("got.flac") + "\n");
        Run sftp = run(List.of("sftp", "-F", file.toString(), "-o", "BatchMode=yes", "-b", batch.toString(), "kiln-127.0.0.1"));
        assertEquals(0, sftp.code(), sftp.toString());
        assertTrue(sftp.out().contains("build-opus"), sftp.toString());
        assertEquals(sha256(outputs.resolve("build-flac/artist/album/01.flac")), sha256(tmp.resolve("got.flac")));

        // A restarted agent keeps its host key: the known_hosts entry still holds.
        int port = sshPort();
        fleet.stop();
        fleet.start();
        assertEquals(port, sshPort());
        Run again = run(List.of("sftp", "-F", file.toString(), "-o", "BatchMode=yes", "-b", batch.toString(), "kiln-127.0.0.1"));
        assertEquals(0, again.code(), again.toString());
    }

    @Test
    void pullDownloadsAProfileIncrementallyResumesAndChecksSizes() throws Exception {
        Path dest = tmp.resolve("music/opus");
        Kiln.Run first = fleet.kiln.run("pull", "--agent", fleet.address(), "opus", dest.toString());
        assertEquals(0, first.exitCode(), first.toString());
        assertTrue(first.err().contains("pulled 5 changed file(s)"), first.err());
        for (int i = 1; i <= 5; i++) {
            String rel = "artist/album/0" + i + ".opus";
            assertEquals(sha256(outputs.resolve("build-opus").resolve(rel)), sha256(dest.resolve(rel)), rel);
        }

        Kiln.Run second = fleet.kiln.run("pull", "--agent", fleet.address(), "opus", dest.toString());
        assertEquals(0, second.exitCode(), second.toString());
        assertTrue(second.err().contains("pulled 0 changed file(s)"), "nothing changed, nothing travels: " + second.err());

        // A file cut off mid-way (as a killed transfer leaves it) is completed by the next pull.
        Path cut = dest.resolve("artist/album/05.opus");
        try (var ch = java.nio.channels.FileChannel.open(cut, StandardOpenOption.WRITE)) {
            ch.truncate(300_000);
        }
        Kiln.Run resumed = fleet.kiln.run("pull", "--agent", fleet.address(), "opus", dest.toString());
        assertEquals(0, resumed.exitCode(), resumed.toString());
        assertEquals(sha256(outputs.resolve("build-opus/artist/album/05.opus")), sha256(cut));

    }

    @Test
    void pullFindsAProfileInsideATreeAndRefusesOneThatDoesNotExistLeavingNothingBehind() throws Exception {
        // The layout a build of a pushed collection leaves: /outputs/TREE/build-PROFILE.
        write(outputs.resolve("vibes/build-vorbis/artist/album/01.ogg"), 100_000, 41);
        Path dest = tmp.resolve("music/vorbis");
        Kiln.Run vorbis = fleet.kiln.run("pull", "--agent", fleet.address(), "vorbis", dest.toString());
        assertEquals(0, vorbis.exitCode(), vorbis.toString());
        assertTrue(vorbis.err().contains("/outputs/vibes/build-vorbis/"), vorbis.err());
        assertEquals(sha256(outputs.resolve("vibes/build-vorbis/artist/album/01.ogg")), sha256(dest.resolve("artist/album/01.ogg")));

        // What `kiln pull ID <TAB>` offers.
        Kiln.Run complete = fleet.kiln.run("__complete", "profiles", "--agent", fleet.address());
        assertEquals(List.of("flac", "opus", "vorbis"), complete.out().lines().toList(), complete.toString());

        Path nowhere = tmp.resolve("music/mp3");
        Kiln.Run missing = fleet.kiln.run("pull", "--agent", fleet.address(), "mp3", nowhere.toString());
        assertEquals(6, missing.exitCode(), missing.toString());
        assertTrue(missing.err().contains("no profile 'mp3'"), missing.err());
        assertTrue(missing.err().contains("flac (/outputs/build-flac), opus (/outputs/build-opus), vorbis (/outputs/vibes/build-vorbis)"),
                missing.err());
        assertFalse(missing.err().contains("rsync failed") || missing.err().contains("run the command again"), missing.err());
        assertFalse(Files.exists(nowhere), "a refused pull creates no DEST");

        Path deep = tmp.resolve("fresh/dir/mp3");
        Kiln.Run path = fleet.kiln.run("pull", "--agent", fleet.address(), deep.toString(), "--path", "/outputs/vibes/build-mp3");
        assertEquals(6, path.exitCode(), path.toString());
        assertTrue(path.err().contains("has no /outputs/vibes/build-mp3"), path.err());
        assertTrue(path.err().contains("vorbis (/outputs/vibes/build-vorbis)"), path.err());
        assertFalse(Files.exists(tmp.resolve("fresh")), "a refused pull creates no directories");
    }

    @Test
    void pushUploadsACollectionIntoTheSourcesArea() throws Exception {
        Path collection = tmp.resolve("vibes");
        write(collection.resolve("artist/album/01-a.wav"), 1_000_000, 31);
        Files.writeString(collection.resolve("artist/ARTIST"), "Someone\n");
        Kiln.Run push = fleet.kiln.run("push", collection.toString(), "--agent", fleet.address());
        assertEquals(0, push.exitCode(), push.toString());
        assertEquals(sha256(collection.resolve("artist/album/01-a.wav")), sha256(tmp.resolve("sources/vibes/artist/album/01-a.wav")));
        Kiln.Run again = fleet.kiln.run("push", collection.toString(), "--agent", fleet.address());
        assertEquals(0, again.exitCode(), again.toString());
        assertTrue(again.err().contains("pushed 0 changed file(s)"), again.err());
    }

    private int sshPort() {
        Kiln.Run status = fleet.kiln.run("status", "--agent", fleet.address(), "-o", "json");
        java.util.regex.Matcher m = java.util.regex.Pattern.compile("\"ssh_port\": (\\d+)").matcher(status.out());
        assertTrue(m.find(), status.out());
        return Integer.parseInt(m.group(1));
    }

    record Run(int code, String out, String err) {
    }

    static Run run(List<String> cmd) throws Exception {
        Process p = new ProcessBuilder(cmd).redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null"))).start();
        var out = p.getInputStream();
        var err = p.getErrorStream();
        String o = new String(out.readAllBytes(), StandardCharsets.UTF_8);
        String e = new String(err.readAllBytes(), StandardCharsets.UTF_8);
        if (!p.waitFor(60, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            throw new AssertionError("timed out: " + cmd);
        }
        return new Run(p.exitValue(), o, e);
    }

    static void write(Path file, int size, long seed) throws Exception {
        Files.createDirectories(file.getParent());
        byte[] b = new byte[size];
        new Random(seed).nextBytes(b);
        Files.write(file, b);
    }

    static String sha256(Path file) throws Exception {
        return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(Files.readAllBytes(file)));
    }
}
