package dev.kiln.agent.volume;

import dev.kiln.testkit.LoopDevice;
import dev.kiln.testkit.Prerequisites;
import dev.kiln.testkit.UnreadableDevice;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.RandomAccessFile;
import java.nio.file.Path;
import java.security.SecureRandom;

import static dev.kiln.agent.volume.Fixture.MIB;
import static dev.kiln.agent.volume.Fixture.sh;
import static org.junit.jupiter.api.Assertions.assertEquals;

/** The three answers, on real loop devices with real blkid and wipefs. */
class FormatDeciderTest {

    @TempDir
    Path dir;

    Fixture fx;
    FormatDecider decider;

    @BeforeEach
    void setUp() throws Exception {
        fx = new Fixture(dir);
        decider = new FormatDecider(fx.tools());
    }

    @AfterEach
    void tearDown() throws Exception {
        fx.close();
    }

    @Test
    void anAllZeroDeviceWithNoSignatureIsBlank() throws Exception {
        LoopDevice d = fx.loop(64 * MIB);
        Probe p = decider.decide(d.device());
        assertEquals(FormatDecision.BLANK, p.decision(), p.reason());
        assertEquals("no signature, and its first and last MiB are all zeros", p.reason());
    }

    @Test
    void anExt4FilesystemHasData() throws Exception {
        LoopDevice d = fx.loop(64 * MIB);
        sh("mkfs.ext4", "-q", "-L", "music", d.device().toString());
        Probe p = decider.decide(d.device());
        assertEquals(new Probe(FormatDecision.HAS_DATA, "ext4", "music", "an ext4 filesystem labelled 'music'"), p);
    }

    @Test
    void anXfsFilesystemHasData() throws Exception {
        LoopDevice d = fx.loop(320 * MIB);
        sh("mkfs.xfs", "-q", d.device().toString());
        Probe p = decider.decide(d.device());
        assertEquals(new Probe(FormatDecision.HAS_DATA, "xfs", "", "an xfs filesystem"), p);
    }

    @Test
    void aGptPartitionTableIsUnknown() throws Exception {
        LoopDevice d = fx.loop(64 * MIB);
        gpt(d.device());
        Probe p = decider.decide(d.device());
        assertEquals(FormatDecision.UNKNOWN, p.decision());
        assertEquals("a gpt partition table", p.reason());
    }

    @Test
    void aLuksHeaderIsUnknown() throws Exception {
        LoopDevice d = fx.loop(64 * MIB);
        luks(d.device());
        Probe p = decider.decide(d.device());
        assertEquals(new Probe(FormatDecision.UNKNOWN, "crypto_LUKS", "", "a LUKS header (an encrypted volume)"), p);
    }

    @Test
    void randomDataIsUnknown() throws Exception {
        LoopDevice d = fx.loop(64 * MIB);
        random(d.device(), 0, 64 * MIB);
        Probe p = decider.decide(d.device());
        assertEquals(FormatDecision.UNKNOWN, p.decision());
        assertEquals("no signature, but its first MiB is not all zeros (unrecognised or random data)", p.reason());
    }

    @Test
    void dataOnlyInTheLastMibIsUnknown() throws Exception {
        LoopDevice d = fx.loop(64 * MIB);
        random(d.device(), 64 * MIB - 4096, 4096);
        Probe p = decider.decide(d.device());
        assertEquals(FormatDecision.UNKNOWN, p.decision());
        assertEquals("no signature, but its last MiB is not all zeros (unrecognised or random data)", p.reason());
    }

    @Test
    void anUnreadableDeviceIsUnknownAlthoughBlkidAndWipefsFindNothing() throws Exception {
        UnreadableDevice d = fx.unreadable(16 * MIB);
        Probe p = decider.decide(d.device());
        assertEquals(FormatDecision.UNKNOWN, p.decision());
        assertEquals("no signature, but it cannot be read (Input/output error)", p.reason());
    }

    /** A GPT partition table with one partition, written by sfdisk. */
    static void gpt(Path device) throws Exception {
        Prerequisites.requireCommand("sfdisk", "apt-get install fdisk");
        ProcessBuilder pb = new ProcessBuilder("sfdisk", "-q", device.toString()).redirectErrorStream(true);
        pb.environment().put("PATH", "/usr/sbin:/usr/bin:/sbin:/bin");
        Process p = pb.start();
        p.getOutputStream().write("label: gpt\n,,L\n".getBytes());
        p.getOutputStream().close();
        String out = new String(p.getInputStream().readAllBytes());
        // sfdisk cannot make the kernel re-read a loop device's table (no partscan); the table is on disk.
        if (p.waitFor() != 0 && !out.contains("Re-reading the partition table failed")) {
            throw new AssertionError("sfdisk failed: " + out);
        }
    }

    /** A LUKS2 header: cryptsetup when it is there, else its magic bytes and version. */
    static void luks(Path device) throws Exception {
        if (Prerequisites.findCommand("cryptsetup", System.getenv("PATH") + ":/usr/sbin:/sbin").isPresent()) {
            ProcessBuilder pb = new ProcessBuilder("cryptsetup", "luksFormat", "-q", "--type", "luks2", "--pbkdf", "pbkdf2",
                    "--pbkdf-force-iterations", "1000", device.toString(), "-").redirectErrorStream(true);
            pb.environment().put("PATH", "/usr/sbin:/usr/bin:/sbin:/bin");
            Process p = pb.start();
            p.getOutputStream().write("not-a-secret".getBytes());
            p.getOutputStream().close();
            String out = new String(p.getInputStream().readAllBytes());
            if (p.waitFor() != 0) {
                throw new AssertionError("cryptsetup luksFormat failed: " + out);
            }
            return;
        }
        try (RandomAccessFile raf = new RandomAccessFile(device.toFile(), "rw")) {
            raf.write(new byte[]{'L', 'U', 'K', 'S', (byte) 0xba, (byte) 0xbe, 0, 1});
        }
    }

    static void random(Path device, long offset, long length) throws Exception {
        SecureRandom r = new SecureRandom();
        byte[] buf = new byte[(int) Math.min(length, MIB)];
        try (RandomAccessFile raf = new RandomAccessFile(device.toFile(), "rw")) {
            raf.seek(offset);
            for (long done = 0; done < length; done += buf.length) {
                r.nextBytes(buf);
                raf.write(buf, 0, (int) Math.min(buf.length, length - done));
            }
        }
    }
}
