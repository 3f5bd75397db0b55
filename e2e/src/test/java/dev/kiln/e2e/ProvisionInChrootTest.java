package dev.kiln.e2e;

import dev.kiln.testkit.Prerequisites;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * packer/provision.sh run for real, as root in a chroot of a throwaway Debian 12 root made by
 * debootstrap (cached by {@code .ci/debian-root}; apt fetches from deb.debian.org), with the files
 * the template uploads: the locally built agent jar, the unit, the image's agent.yml and the IMDS
 * packet filter with its unit. The root starts with what a booted build instance has and must not
 * leave in the image (SSH host keys, shell history, cloud-init's instance state); the test then
 * checks the image as an instance of it would find it. A second run with system_sshd_port=2222 checks that the script
 * converges (idempotent) and keeps sshd on the other port.
 */
class ProvisionInChrootTest {

    static final Path ROOT = ImageAndUnitTest.ROOT;
    static final Path CACHE = Path.of(Optional.ofNullable(System.getenv("KILN_CI_CACHE")).orElse("/var/cache/kiln-ci"));
    static final String STAGING = "/tmp/kiln-provision";

    @TempDir
    Path dir;

    @Test
    void provisionShTurnsADebian12RootIntoAnAgentImage() throws Exception {
        Prerequisites.requireRoot("debootstrap, chroot and mount need root");
        Prerequisites.requireCommand("debootstrap", "apt-get install debootstrap (bash .ci/install does it)");
        Path chroot = Prerequisites.requireCommand("chroot", "apt-get install coreutils");

        long t0 = System.nanoTime();
        Result cached = run(List.of("bash", ROOT.resolve(".ci/debian-root").toString()), Duration.ofMinutes(20));
        assertEquals(0, cached.exitCode(), cached.toString());
        Path tarball = Path.of(cached.stdout().strip());
        long t1 = System.nanoTime();
        Path root = Files.createDirectories(dir.resolve("root"));
        Result unpack = run(List.of("tar", "--numeric-owner", "--xattrs", "-xpf", tarball.toString(), "-C", root.toString()),
                Duration.ofMinutes(5));
        assertEquals(0, unpack.exitCode(), unpack.toString());
        long t2 = System.nanoTime();
        System.out.printf("[ProvisionInChrootTest] Debian root: debootstrap or cache %.1f s, unpack %.1f s%n",
                (t1 - t0) / 1e9, (t2 - t1) / 1e9);

        // What the booted build instance has: host keys (openssh-server made them), shell history
        // of packer's session, cloud-init's state of this instance.
        assertFalse(glob(root.resolve("etc/ssh"), "ssh_host_*_key").isEmpty(), "debootstrap's openssh-server made host keys");
        Files.createDirectories(root.resolve("home/admin"));
        Files.writeString(root.resolve("home/admin/.bash_history"), "sudo -i\n");
        Files.writeString(root.resolve("root/.bash_history"), "apt-get update\n");
        // The build instance's machine id, in /etc and in D-Bus's own copy.
        Files.writeString(root.resolve("etc/machine-id"), "0123456789abcdef0123456789abcdef\n");
        Files.createDirectories(root.resolve("var/lib/dbus"));
        Files.deleteIfExists(root.resolve("var/lib/dbus/machine-id"));
        Files.writeString(root.resolve("var/lib/dbus/machine-id"), "0123456789abcdef0123456789abcdef\n");
        Path instance = Files.createDirectories(root.resolve("var/lib/cloud/instances/i-0123456789abcdef0"));
        Files.writeString(instance.resolve("user-data.txt"), "kiln: {}\n");
        Files.createSymbolicLink(root.resolve("var/lib/cloud/instance"), Path.of("/var/lib/cloud/instances/i-0123456789abcdef0"));
        Files.copy(Path.of("/etc/resolv.conf"), root.resolve("etc/resolv.conf"), StandardCopyOption.REPLACE_EXISTING);
        Path debs = keepDownloadedPackages(root);

        // /proc for apt's maintainer scripts (the JDK's) and for java -version below; unmounted at the end.
        Path proc = root.resolve("proc");
        Result mount = run(List.of("mount", "-t", "proc", "proc", proc.toString()), Duration.ofSeconds(30));
        assertEquals(0, mount.exitCode(), mount.toString());
        Result first = null;
        Result second = null;
        try {
            first = provision(chroot, root, 0);
            assertEquals(0, first.exitCode(), first.toString());
            assertTrue(first.stdout().contains("[provision] done: kiln-agent installed and enabled; IMDS root-only; sshd disabled"), first.toString());
            assertTheImage(chroot, root);
            Path wants = root.resolve("etc/systemd/system/multi-user.target.wants");
            assertFalse(Files.exists(wants.resolve("ssh.service"), LinkOption.NOFOLLOW_LINKS), "the system sshd is disabled");
            assertFalse(Files.exists(root.resolve("etc/ssh/sshd_config.d/kiln-port.conf")));

            // Again, keeping sshd on 2222: the script converges, and sshd is enabled on that port only.
            second = provision(chroot, root, 2222);
            assertEquals(0, second.exitCode(), second.toString());
            assertTrue(second.stdout().contains("[provision] done: kiln-agent installed and enabled; IMDS root-only; sshd on port 2222"),
                    second.toString());
            assertTheImage(chroot, root);
            assertTrue(Files.readSymbolicLink(wants.resolve("ssh.service")).toString().endsWith("/systemd/system/ssh.service"),
                    "the system sshd is enabled");
            assertTrue(Files.readString(root.resolve("etc/ssh/sshd_config.d/kiln-port.conf")).contains("\nPort 2222\n"));
        } finally {
            Result umount = run(List.of("umount", proc.toString()), Duration.ofSeconds(30));
            saveDownloadedPackages(root, debs);
            assertEquals(0, umount.exitCode(), umount.toString());
        }
        long t3 = System.nanoTime();
        System.out.printf("[ProvisionInChrootTest] provision.sh: first run %.1f s, second run %.1f s; whole test %.1f s%n",
                first.seconds(), second.seconds(), (t3 - t0) / 1e9);
    }

    /** The image as every instance of it finds it. */
    private void assertTheImage(Path chroot, Path root) throws IOException {
        // The agent, its settings and its unit: root's, world-readable, not writable by others, as built.
        assertFile(root, "opt/kiln/kiln-agent.jar", AgentProcess.jar(), "rw-r--r--");
        assertFile(root, "etc/kiln/agent.yml", ImageAndUnitTest.IMAGE_SETTINGS, "rw-r--r--");
        assertFile(root, "etc/systemd/system/kiln-agent.service", ImageAndUnitTest.UNIT, "rw-r--r--");
        assertEquals("rwxr-xr-x", permissions(root.resolve("opt/kiln")));
        // Enabled (a symlink where multi-user.target looks), not started: no state in the image.
        Path enabled = root.resolve("etc/systemd/system/multi-user.target.wants/kiln-agent.service");
        assertEquals(Path.of("/etc/systemd/system/kiln-agent.service"), Files.readSymbolicLink(enabled));
        // The boot backstop: installed, executable by root only to change, enabled to run at every boot.
        assertFile(root, "opt/kiln/bin/kiln-boot-backstop", ImageAndUnitTest.ROOT.resolve("systemd/kiln-boot-backstop"), "rwxr-xr-x");
        assertFile(root, "etc/systemd/system/kiln-boot-backstop.service",
                ImageAndUnitTest.ROOT.resolve("systemd/kiln-boot-backstop.service"), "rw-r--r--");
        assertEquals(Path.of("/etc/systemd/system/kiln-boot-backstop.service"), Files.readSymbolicLink(
                root.resolve("etc/systemd/system/multi-user.target.wants/kiln-boot-backstop.service")));
        assertTrue(!Files.exists(root.resolve("var/lib/kiln")) || isEmpty(root.resolve("var/lib/kiln")),
                "/var/lib/kiln is empty in the image");

        // Only root reaches IMDS: the packet filter and its unit, enabled early in every boot
        // (sysinit.target). ImdsRootOnlyTest shows the filter at work.
        assertFile(root, "etc/kiln/imds.nft", ImageAndUnitTest.IMDS_RULE, "rw-r--r--");
        assertFile(root, "etc/systemd/system/kiln-imds.service", ImageAndUnitTest.IMDS_UNIT, "rw-r--r--");
        assertEquals(Path.of("/etc/systemd/system/kiln-imds.service"),
                Files.readSymbolicLink(root.resolve("etc/systemd/system/sysinit.target.wants/kiln-imds.service")));
        Result nft = inChroot(chroot, root, List.of("sh", "-c", "command -v nft"));
        assertEquals("/usr/sbin/nft", nft.stdout().strip(), "the unit's ExecStart:\n" + nft);

        // The build user: a system user with no login shell, no password, in no privileged group.
        String passwd = line(root.resolve("etc/passwd"), "kiln:");
        String[] p = passwd.split(":");
        int uid = Integer.parseInt(p[2]);
        assertTrue(uid > 0 && uid < 1000, "a system user, not root: " + passwd);
        assertEquals("/var/lib/kiln-build", p[5], passwd);
        assertEquals("/usr/sbin/nologin", p[6], passwd);
        String shadow = line(root.resolve("etc/shadow"), "kiln:");
        assertTrue(shadow.split(":")[1].matches("[!*]+"), "no password: " + shadow);
        for (String group : List.of("sudo", "adm", "root", "disk", "shadow")) {
            Optional<String> g = Files.readAllLines(root.resolve("etc/group")).stream().filter(l -> l.startsWith(group + ":")).findFirst();
            g.ifPresent(l -> assertFalse(List.of(l.substring(l.lastIndexOf(':') + 1).split(",")).contains("kiln"), l));
        }

        // What the agent and its builds run.
        Result packages = inChroot(chroot, root, List.of("dpkg-query", "-W", "-f", "${Package} ${db:Status-Status}\\n",
                "openjdk-17-jre-headless", "tup", "fuse3", "flac", "lame", "vorbis-tools", "opus-tools", "sox", "rsync",
                "bubblewrap", "e2fsprogs", "xfsprogs", "nvme-cli", "nftables"));
        assertEquals(0, packages.exitCode(), packages.toString());
        packages.stdout().lines().forEach(l -> assertTrue(l.endsWith(" installed"), packages.toString()));
        assertEquals(14, packages.stdout().lines().count(), packages.toString());
        Result java = inChroot(chroot, root, List.of("/usr/bin/java", "-version"));
        assertTrue(java.stderr().contains("version \"17."), java.toString());
        for (String tool : List.of("tup", "fusermount3", "flac", "lame", "oggenc", "opusenc", "rsync", "bwrap", "setpriv")) {
            Result which = inChroot(chroot, root, List.of("sh", "-c", "command -v " + tool));
            assertEquals(0, which.exitCode(), tool + " is installed:\n" + which);
        }

        // The class-data archive the training agent wrote: valid for this JDK and this jar (with
        // -Xshare:on a JVM that cannot map it fails instead of ignoring it), and nothing of the
        // training run (its state, certificate, log) left in the image.
        assertEquals("rw-r--r--", permissions(root.resolve("opt/kiln/kiln-agent.jsa")));
        Result mapped = inChroot(chroot, root, List.of("/usr/bin/java", "-Xshare:on",
                "-XX:SharedArchiveFile=/opt/kiln/kiln-agent.jsa", "-cp", "/opt/kiln/kiln-agent.jar", "-version"));
        assertEquals(0, mapped.exitCode(), "the JVM maps /opt/kiln/kiln-agent.jsa:\n" + mapped);
        assertEquals(List.of(), glob(root.resolve("tmp"), "tmp.*"), "the training directory is removed");
        assertEquals(List.of(), glob(root.resolve("opt/kiln"), "*.tmp"));

        // Nothing of the build instance: no host keys, no history, no cloud-init instance, no staging, no apt lists.
        assertEquals(List.of(), glob(root.resolve("etc/ssh"), "ssh_host_*"));
        assertFalse(Files.exists(root.resolve("root/.bash_history")));
        assertFalse(Files.exists(root.resolve("home/admin/.bash_history")));
        assertFalse(Files.exists(root.resolve("var/lib/cloud/instances")));
        assertFalse(Files.exists(root.resolve("var/lib/cloud/instance"), LinkOption.NOFOLLOW_LINKS));
        assertFalse(Files.exists(root.resolve(STAGING.substring(1))));
        assertEquals(List.of(), glob(root.resolve("var/lib/apt/lists"), "*_Packages*"));
        // An empty machine id, which systemd replaces with a new one at each instance's first boot.
        assertTrue(Files.isRegularFile(root.resolve("etc/machine-id"), LinkOption.NOFOLLOW_LINKS), "/etc/machine-id is a file");
        assertEquals(0, Files.size(root.resolve("etc/machine-id")), "/etc/machine-id is empty");
        Path dbusId = root.resolve("var/lib/dbus/machine-id");
        assertTrue(!Files.exists(dbusId, LinkOption.NOFOLLOW_LINKS)
                || Files.isSymbolicLink(dbusId) && Path.of("/etc/machine-id").equals(Files.readSymbolicLink(dbusId)),
                "D-Bus's machine id follows /etc/machine-id");
    }

    // ---------------------------------------------------------------- running provision.sh

    /** Runs provision.sh in the chroot as packer would: as root, with the staging directory uploaded. */
    private Result provision(Path chroot, Path root, int sshdPort) throws IOException {
        Path staging = Files.createDirectories(root.resolve(STAGING.substring(1)));
        Files.copy(AgentProcess.jar(), staging.resolve("kiln-agent.jar"), StandardCopyOption.REPLACE_EXISTING);
        Files.copy(ImageAndUnitTest.UNIT, staging.resolve("kiln-agent.service"), StandardCopyOption.REPLACE_EXISTING);
        Files.copy(ImageAndUnitTest.IMAGE_SETTINGS, staging.resolve("agent.yml"), StandardCopyOption.REPLACE_EXISTING);
        for (String f : List.of("kiln-boot-backstop", "kiln-boot-backstop.service")) {
            Files.copy(ImageAndUnitTest.ROOT.resolve("systemd").resolve(f), staging.resolve(f), StandardCopyOption.REPLACE_EXISTING);
        }
        Files.copy(ImageAndUnitTest.IMDS_RULE, staging.resolve("kiln-imds.nft"), StandardCopyOption.REPLACE_EXISTING);
        Files.copy(ImageAndUnitTest.IMDS_UNIT, staging.resolve("kiln-imds.service"), StandardCopyOption.REPLACE_EXISTING);
        Path script = root.resolve("tmp/provision.sh");
        Files.copy(ImageAndUnitTest.PROVISION, script, StandardCopyOption.REPLACE_EXISTING);
        try {
            return run(List.of(chroot.toString(), root.toString(), "/usr/bin/env", "-i",
                    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "LANG=C.UTF-8",
                    "PROVISION_STAGING=" + STAGING, "SYSTEM_SSHD_PORT=" + sshdPort, "bash", "/tmp/provision.sh"),
                    Duration.ofMinutes(20));
        } finally {
            Files.deleteIfExists(script);
        }
    }

    private Result inChroot(Path chroot, Path root, List<String> command) {
        List<String> c = new ArrayList<>(List.of(chroot.toString(), root.toString()));
        c.addAll(command);
        return run(c, Duration.ofMinutes(2));
    }

    /**
     * Test scaffolding, not part of the image: the packages apt downloads are kept in the cache
     * (dpkg's Pre-Invoke copies them out of apt's archive before provision.sh's apt-get clean), and
     * put back into apt's archive before the next run, so a warm run downloads only the indexes.
     */
    private static Path keepDownloadedPackages(Path root) throws IOException {
        Path cache = Files.createDirectories(CACHE.resolve("apt-archives"));
        Path archives = Files.createDirectories(root.resolve("var/cache/apt/archives"));
        for (Path deb : glob(cache, "*.deb")) {
            Files.copy(deb, archives.resolve(deb.getFileName()), StandardCopyOption.REPLACE_EXISTING);
        }
        Path keep = Files.createDirectories(root.resolve("var/tmp/kiln-test-debs"));
        Files.writeString(root.resolve("etc/apt/apt.conf.d/00kiln-test-keep-debs"),
                "DPkg::Pre-Invoke { \"cp -n /var/cache/apt/archives/*.deb /var/tmp/kiln-test-debs/ 2>/dev/null || true\"; };\n");
        return keep;
    }

    private static void saveDownloadedPackages(Path root, Path keep) throws IOException {
        Path cache = CACHE.resolve("apt-archives");
        for (Path deb : glob(keep, "*.deb")) {
            Files.copy(deb, cache.resolve(deb.getFileName()), StandardCopyOption.REPLACE_EXISTING);
        }
    }

    // ---------------------------------------------------------------- helpers

    private static void assertFile(Path root, String path, Path expected, String mode) throws IOException {
        Path f = root.resolve(path);
        assertArrayEquals(Files.readAllBytes(expected), Files.readAllBytes(f), path + " is " + expected);
        assertEquals(mode, permissions(f), path);
        assertEquals(0, Files.getAttribute(f, "unix:uid", LinkOption.NOFOLLOW_LINKS), path + " belongs to root");
        assertEquals(0, Files.getAttribute(f, "unix:gid", LinkOption.NOFOLLOW_LINKS), path + " group root");
    }

    private static String permissions(Path p) throws IOException {
        return java.nio.file.attribute.PosixFilePermissions.toString(Files.getPosixFilePermissions(p, LinkOption.NOFOLLOW_LINKS));
    }

    private static boolean isEmpty(Path d) throws IOException {
        try (Stream<Path> s = Files.list(d)) {
            return s.findAny().isEmpty();
        }
    }

    private static String line(Path file, String prefix) throws IOException {
        return Files.readAllLines(file).stream().filter(l -> l.startsWith(prefix)).findFirst()
                .orElseThrow(() -> new AssertionError("no line " + prefix + " in " + file));
    }

    private static List<Path> glob(Path d, String pattern) throws IOException {
        if (!Files.isDirectory(d)) {
            return List.of();
        }
        List<Path> out = new ArrayList<>();
        try (var s = Files.newDirectoryStream(d, pattern)) {
            s.forEach(out::add);
        }
        return out;
    }

    /** A command's outcome (ImageAndUnitTest's runner: no stdin, killed after the timeout) and how long it took. */
    record Result(ImageAndUnitTest.Result result, double seconds) {
        int exitCode() {
            return result.exitCode();
        }

        String stdout() {
            return result.stdout();
        }

        String stderr() {
            return result.stderr();
        }

        @Override
        public String toString() {
            List<String> lines = result.toString().lines().toList();
            return String.join("\n", lines.subList(Math.max(0, lines.size() - 80), lines.size())) + "\n";
        }
    }

    private static Result run(List<String> command, Duration timeout) {
        long start = System.nanoTime();
        ImageAndUnitTest.Result r = ImageAndUnitTest.run(command, Map.of("LANG", "C.UTF-8"), Path.of("/"), timeout);
        return new Result(r, (System.nanoTime() - start) / 1e9);
    }
}
