package dev.kiln.e2e;

import dev.kiln.controller.ExitCodes;
import dev.kiln.testkit.LoopDevice;
import dev.kiln.testkit.Prerequisites;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * `kiln volumes`, `kiln mount`, `kiln unmount`, `kiln freeze` and `kiln thaw` as a user runs them,
 * against a real agent process (as root) with boot-time mounts, on real loop devices. The agent
 * sees only this test's devices: its sysfs root is a directory of links to their sysfs entries.
 */
class VolumesCliTest {

    static final long MIB = 1L << 20;

    @TempDir
    Path dir;

    final List<LoopDevice> devices = new ArrayList<>();
    final List<Process> children = new ArrayList<>();
    LocalFleet fleet;

    LoopDevice loop(Path sys) throws IOException {
        LoopDevice d = LoopDevice.create(dir, 64 * MIB);
        devices.add(d);
        String name = d.device().getFileName().toString();
        Files.createSymbolicLink(sys.resolve(name), Path.of("/sys/class/block", name).toRealPath());
        return d;
    }

    @AfterEach
    void cleanUp() throws Exception {
        for (Process p : children) {
            p.destroyForcibly();
            p.waitFor(10, TimeUnit.SECONDS);
        }
        if (fleet != null) {
            fleet.close();
        }
        List<String> mine = new ArrayList<>();
        for (String line : Files.readAllLines(Path.of("/proc/self/mountinfo"))) {
            String mp = line.split(" ")[4];
            if (mp.startsWith(dir.toString())) {
                mine.add(mp);
            }
        }
        Collections.reverse(mine);
        for (String mp : mine) {
            run("fsfreeze", "--unfreeze", mp);
            run("umount", mp);
        }
        for (int i = devices.size() - 1; i >= 0; i--) {
            devices.get(i).close();
        }
    }

    static boolean run(String... argv) throws IOException, InterruptedException {
        ProcessBuilder pb = new ProcessBuilder(argv).redirectErrorStream(true);
        pb.environment().put("PATH", "/usr/sbin:/usr/bin:/sbin:/bin");
        Process p = pb.start();
        p.getInputStream().readAllBytes();
        return p.waitFor() == 0;
    }

    static boolean mounted(Path mp) throws IOException {
        return Files.readAllLines(Path.of("/proc/self/mountinfo")).stream().anyMatch(l -> l.split(" ")[4].equals(mp.toString()));
    }

    @Test
    void mountsAtBootThenMountsListsFreezesAndUnmountsThroughTheCli() throws Exception {
        Prerequisites.requireRoot("loop devices and mounts");
        Prerequisites.requireCommand("sfdisk", "apt-get install fdisk");
        Path sys = Files.createDirectories(dir.resolve("sys/block"));
        LoopDevice boot = loop(sys);
        LoopDevice blank = loop(sys);
        LoopDevice gpt = loop(sys);
        ProcessBuilder sfdisk = new ProcessBuilder("sfdisk", "-q", gpt.device().toString()).redirectErrorStream(true);
        sfdisk.environment().put("PATH", "/usr/sbin:/usr/bin:/sbin:/bin");
        Process sf = sfdisk.start();
        sf.getOutputStream().write("label: gpt\n,,L\n".getBytes(StandardCharsets.US_ASCII));
        sf.getOutputStream().close();
        sf.getInputStream().readAllBytes();
        sf.waitFor();

        Path bootMp = dir.resolve("mnt/boot");
        Path gptMp = dir.resolve("mnt/gpt");
        Path dataMp = dir.resolve("mnt/data");
        fleet = new LocalFleet(dir);
        Files.writeString(fleet.settings, Files.readString(fleet.settings) + """
                  volumes:
                    sysfs-root: '%s'
                    attach-timeout: 5s
                    mounts:
                      - device: %s
                        mount-point: '%s'
                        options: noexec
                        format: true
                      - device: %s
                        mount-point: '%s'
                        format: true
                """.formatted(dir.resolve("sys"), boot.device(), bootMp, gpt.device(), gptMp));
        fleet.start();
        String agent = fleet.address();
        Kiln kiln = fleet.kiln;
        assertTrue(mounted(bootMp), "the first boot mount formatted the blank device and mounted it");
        assertFalse(mounted(gptMp), "the GPT device was refused");
        String gptRefusal = "refusing to use " + gpt.device() + ": found a gpt partition table; it is neither provably"
                + " blank nor a recognised filesystem, so it was not formatted or mounted; nothing was written";
        assertTrue(fleet.agent.output().contains("boot mount kiln.volumes.mounts[1] (" + gpt.device() + " at " + gptMp
                + ") failed: " + gptRefusal), fleet.agent.output());

        Kiln.Run list = kiln.run("volumes", "--agent", agent);
        assertEquals(0, list.exitCode(), list.toString());
        assertEquals("kiln: boot mount kiln.volumes.mounts[1] (" + gpt.device() + " at " + gptMp + ") failed: "
                + gptRefusal + "\n", list.err());
        List<String> rows = list.out().lines().toList();
        assertTrue(rows.get(0).matches("DEVICE\\s+VOLUME\\s+SIZE\\s+FS\\s+MOUNT\\s+STATE"), rows.get(0));
        assertTrue(rows.contains(row(boot.device() + "  -  64M  ext4  " + bootMp + "  mounted", rows)), list.out());
        assertTrue(rows.contains(row(blank.device() + "  -  64M  -  -  blank", rows)), list.out());
        assertTrue(rows.contains(row(gpt.device() + "  -  64M  -  -  unknown", rows)), list.out());

        Kiln.Run refused = kiln.run("mount", "--agent", agent, blank.device().toString(), dataMp.toString());
        assertEquals(ExitCodes.REFUSED, refused.exitCode(), refused.toString());
        assertTrue(refused.err().endsWith("kiln: agent " + agent + " refused: " + blank.device() + " is blank (no signature,"
                + " and its first and last MiB are all zeros) and the request does not allow formatting (kiln mount --format,"
                + " or format: true in kiln.volumes.mounts); nothing was written\n"), refused.err());

        Kiln.Run gptMount = kiln.run("mount", "--agent", agent, gpt.device().toString(), gptMp.toString(), "--format");
        assertEquals(ExitCodes.REFUSED, gptMount.exitCode(), gptMount.toString());
        assertTrue(gptMount.err().endsWith("kiln: agent " + agent + " refused: " + gptRefusal + "\n"), gptMount.err());

        Kiln.Run formatted = kiln.run("mount", "--agent", agent, blank.device().toString(), dataMp.toString(), "--format");
        assertEquals(0, formatted.exitCode(), formatted.toString());
        assertTrue(formatted.err().contains("kiln: formatted " + blank.device() + " as ext4 (it was blank)\n"), formatted.err());
        assertTrue(formatted.err().contains("kiln: mounted " + blank.device() + " at " + dataMp + " (nodev,nosuid,relatime,rw)"),
                formatted.err());
        assertTrue(mounted(dataMp));
        Kiln.Run again = kiln.run("mount", "--agent", agent, blank.device().toString(), dataMp.toString(), "--format");
        assertEquals(0, again.exitCode(), again.toString());
        assertTrue(again.err().contains("kiln: " + dataMp + " was already mounted as requested; nothing to do"), again.err());

        Files.writeString(dataMp.resolve("kept.txt"), "kept");
        // A build running in a work tree on the volume, and a process that is not a build.
        for (Path p : List.of(dir, dir.resolve("mnt"))) {
            Files.setPosixFilePermissions(p, java.nio.file.attribute.PosixFilePermissions.fromString("rwxr-xr-x"));
        }
        Path tree = LocalFleet.workTree(dataMp, "tree");
        Kiln.Run build = kiln.run("build", "--agent", agent, "-d", tree.toString(), "--", "sleep", "600");
        assertEquals(0, build.exitCode(), build.toString());
        String buildId = build.out().strip();
        Process holder = new ProcessBuilder("sleep", "600").directory(dataMp.toFile()).start();
        children.add(holder);
        Kiln.Run unmount = kiln.run("unmount", "--agent", agent, dataMp.toString(), "--grace", "5s");
        assertEquals(0, unmount.exitCode(), unmount.toString());
        assertEquals("kiln: stopped build " + buildId + " (cancelled)\nkiln: stopped " + holder.pid() + " sleep 600 (TERM)\n"
                + "kiln: unmounted " + dataMp + "\n", unmount.err());
        assertFalse(mounted(dataMp));
        assertFalse(holder.isAlive());
        Kiln.Run unmountAgain = kiln.run("unmount", "--agent", agent, dataMp.toString());
        assertEquals(0, unmountAgain.exitCode(), unmountAgain.toString());
        assertEquals("kiln: " + dataMp + " was not mounted; nothing to do\n", unmountAgain.err());

        Kiln.Run root = kiln.run("freeze", "--agent", agent, "/");
        assertEquals(ExitCodes.REFUSED, root.exitCode(), root.toString());
        assertEquals("kiln: agent " + agent + " refused: refusing to freeze /: the root filesystem holds the system and the"
                + " agent; freeze a data volume instead; nothing was frozen\n", root.err());

        // Freeze with a short lease; the CLI returns and is gone. The agent thaws by itself.
        Kiln.Run freeze = kiln.run("freeze", "--agent", agent, bootMp.toString(), "--lease", "2s");
        Instant frozen = Instant.now();
        assertEquals(0, freeze.exitCode(), freeze.toString());
        Instant thawBy = Instant.parse(freeze.out().strip());
        assertTrue(Duration.between(frozen, thawBy).toMillis() <= 2000, freeze.out());
        Kiln.Run listFrozen = kiln.run("volumes", "--agent", agent);
        assertTrue(listFrozen.out().lines().anyMatch(l -> l.startsWith(boot.device() + " ") && l.endsWith(" frozen")),
                listFrozen.out());
        Process writer = new ProcessBuilder("sh", "-c", "printf after > \"$0\"", bootMp.resolve("after-freeze").toString()).start();
        children.add(writer);
        assertTrue(writer.waitFor(3000 - Duration.between(frozen, Instant.now()).toMillis(), TimeUnit.MILLISECONDS),
                "the write completes within the lease plus one second");
        assertTrue(Duration.between(frozen, Instant.now()).toMillis() > 1000, "it did wait for the thaw");
        Kiln.Run thaw = kiln.run("thaw", "--agent", agent, bootMp.toString());
        assertEquals(0, thaw.exitCode(), thaw.toString());
        assertEquals("kiln: " + bootMp + " was not frozen; nothing to do\n", thaw.err());

        // A restarted agent finds its boot mount in place and still knows it as its own.
        fleet.stop();
        fleet.start();
        assertTrue(fleet.agent.output().contains("boot mount kiln.volumes.mounts[0]: already mounted at " + bootMp),
                fleet.agent.output());
        Kiln.Run unmountBoot = kiln.run("unmount", "--agent", agent, bootMp.toString());
        assertEquals(0, unmountBoot.exitCode(), unmountBoot.toString());
        assertFalse(mounted(bootMp));
    }

    /** The table row as printed, from cells joined by two spaces, matched against column alignment. */
    static String row(String cells, List<String> rows) {
        String[] want = cells.split("  ");
        for (String r : rows) {
            if (List.of(r.trim().split("\\s+")).equals(List.of(want))) {
                return r;
            }
        }
        return "(no row with cells " + List.of(want) + ")";
    }
}
