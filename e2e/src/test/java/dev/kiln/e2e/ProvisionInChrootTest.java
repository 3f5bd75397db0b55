package dev.kiln.e2e;

import dev.kiln.testkit.Prerequisites;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.TestMethodOrder;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import dev.kiln.controller.pki.FleetCa;
import dev.kiln.controller.pki.IssuedCertificate;
import dev.kiln.controller.pki.Pem;
import dev.kiln.testkit.FreePorts;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.time.Instant;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
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
 * packet filter with its unit; then packer/check-image.sh, as the template runs it last. The root
 * starts with what a booted build instance has and must not leave in the image (SSH host keys,
 * shell history, cloud-init's instance state); the test then checks the image as an instance of it
 * would find it. A second run with system_sshd_port=2222 checks that the script converges
 * (idempotent) and keeps sshd on the other port.
 *
 * <p>The tests of this class share one root, unpacked once (the runs converge, so each test's
 * build is a rebuild of the same image): the base image first, then each kind's variable file
 * (packer/*.pkrvars.hcl, whose packages then accumulate in the root), then user scripts that fail
 * or break a guarantee. Each test also works alone, from the pristine root.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class ProvisionInChrootTest {

    static final Path ROOT = ImageAndUnitTest.ROOT;
    static final Path CACHE = Path.of(Optional.ofNullable(System.getenv("KILN_CI_CACHE")).orElse("/var/cache/kiln-ci"));
    static final String STAGING = "/tmp/kiln-provision";
    static final Path CHECK = ImageAndUnitTest.PACKER_DIR.resolve("check-image.sh");

    @TempDir
    static Path dir;

    /** The shared Debian root (null until a test needs it), chroot's path, and apt's kept packages. */
    private Path root;
    private Path chroot;
    private Path debs;
    private final long classStart = System.nanoTime();

    /** One build of the image: the template's variables, as provision.sh and check-image.sh get them. */
    record Vars(int sshdPort, List<String> packages, List<String> groups, String userScript) {
        static Vars base(int sshdPort) {
            return new Vars(sshdPort, List.of(), List.of(), null);
        }
    }

    /** The shared root, unpacked and seeded on first use, with /proc mounted. */
    private Path root() throws Exception {
        if (root != null) {
            return root;
        }
        Prerequisites.requireRoot("debootstrap, chroot and mount need root");
        Prerequisites.requireCommand("debootstrap", "apt-get install debootstrap (bash .ci/install does it)");
        chroot = Prerequisites.requireCommand("chroot", "apt-get install coreutils");

        long t0 = System.nanoTime();
        Result cached = run(List.of("bash", ROOT.resolve(".ci/debian-root").toString()), Duration.ofMinutes(20));
        assertEquals(0, cached.exitCode(), cached.toString());
        Path tarball = Path.of(cached.stdout().strip());
        long t1 = System.nanoTime();
        Path r = Files.createDirectories(dir.resolve("root"));
        Result unpack = run(List.of("tar", "--numeric-owner", "--xattrs", "-xpf", tarball.toString(), "-C", r.toString()),
                Duration.ofMinutes(5));
        assertEquals(0, unpack.exitCode(), unpack.toString());
        long t2 = System.nanoTime();
        System.out.printf("[ProvisionInChrootTest] Debian root: debootstrap or cache %.1f s, unpack %.1f s%n",
                (t1 - t0) / 1e9, (t2 - t1) / 1e9);

        // What the booted build instance has: host keys (openssh-server made them), shell history
        // of packer's session, cloud-init's state of this instance.
        assertFalse(glob(r.resolve("etc/ssh"), "ssh_host_*_key").isEmpty(), "debootstrap's openssh-server made host keys");
        Files.createDirectories(r.resolve("home/admin"));
        Files.writeString(r.resolve("home/admin/.bash_history"), "sudo -i\n");
        Files.writeString(r.resolve("root/.bash_history"), "apt-get update\n");
        // The build instance's machine id, in /etc and in D-Bus's own copy.
        Files.writeString(r.resolve("etc/machine-id"), "0123456789abcdef0123456789abcdef\n");
        Files.createDirectories(r.resolve("var/lib/dbus"));
        Files.deleteIfExists(r.resolve("var/lib/dbus/machine-id"));
        Files.writeString(r.resolve("var/lib/dbus/machine-id"), "0123456789abcdef0123456789abcdef\n");
        Path instance = Files.createDirectories(r.resolve("var/lib/cloud/instances/i-0123456789abcdef0"));
        Files.writeString(instance.resolve("user-data.txt"), "kiln: {}\n");
        Files.createSymbolicLink(r.resolve("var/lib/cloud/instance"), Path.of("/var/lib/cloud/instances/i-0123456789abcdef0"));
        Files.copy(Path.of("/etc/resolv.conf"), r.resolve("etc/resolv.conf"), StandardCopyOption.REPLACE_EXISTING);
        debs = keepDownloadedPackages(r);
        // Test scaffolding, not part of the image: packages with init scripts (nginx, docker.io)
        // would have invoke-rc.d start their daemons in the chroot, on this machine's network,
        // since no systemd runs there. policy-rc.d forbids it, as in any chroot build; on a build
        // instance systemd runs and they start there.
        Path policy = r.resolve("usr/sbin/policy-rc.d");
        Files.writeString(policy, "#!/bin/sh\n# kiln test: no daemons start in this chroot\nexit 101\n");
        Files.setPosixFilePermissions(policy, PosixFilePermissions.fromString("rwxr-xr-x"));

        // /proc for apt's maintainer scripts (the JDK's) and for java; unmounted after the last test.
        Result mount = run(List.of("mount", "-t", "proc", "proc", r.resolve("proc").toString()), Duration.ofSeconds(30));
        assertEquals(0, mount.exitCode(), mount.toString());
        root = r;
        return root;
    }

    @AfterAll
    void unmountAndKeepPackages() throws IOException {
        if (root == null) {
            return;
        }
        Result umount = run(List.of("umount", root.resolve("proc").toString()), Duration.ofSeconds(30));
        saveDownloadedPackages(root, debs);
        assertEquals(0, umount.exitCode(), umount.toString());
        // rm is minutes faster than JUnit's own walk over the root's 100 000 files; /proc is unmounted.
        Result rm = run(List.of("rm", "-rf", "--one-file-system", root.toString()), Duration.ofMinutes(5));
        assertEquals(0, rm.exitCode(), rm.toString());
        System.out.printf("[ProvisionInChrootTest] all tests of the class: %.1f s%n", (System.nanoTime() - classStart) / 1e9);
    }

    @Test
    @Order(1)
    void provisionShTurnsADebian12RootIntoAnAgentImage() throws Exception {
        long t0 = System.nanoTime();
        Path root = root();
        Build first = build(Vars.base(0));
        first.assertSucceeded();
        assertTrue(first.provision().stdout().contains("[provision] done: kiln-agent installed and enabled; IMDS root-only; sshd disabled"),
                first.toString());
        assertTrue(first.check().stdout().contains("[check-image] ok: the agent's unit, the boot backstop, IMDS for root only, "
                + "no system sshd, no agent state"), first.toString());
        assertTheImage(chroot, root);
        Result du = inChroot(chroot, root, List.of("du", "-sxm", "--exclude=/var/tmp/kiln-test-debs", "/"));
        System.out.printf("[ProvisionInChrootTest] base image: the root file system uses %s MB%n", du.stdout().split("\\s+")[0]);
        Path wants = root.resolve("etc/systemd/system/multi-user.target.wants");
        assertFalse(Files.exists(wants.resolve("ssh.service"), LinkOption.NOFOLLOW_LINKS), "the system sshd is disabled");
        assertFalse(Files.exists(root.resolve("etc/ssh/sshd_config.d/kiln-port.conf")));

        // Again, keeping sshd on 2222: the script converges, and sshd is enabled on that port only.
        Build second = build(Vars.base(2222));
        second.assertSucceeded();
        assertTrue(second.provision().stdout().contains("[provision] done: kiln-agent installed and enabled; IMDS root-only; sshd on port 2222"),
                second.toString());
        assertTrue(second.check().stdout().contains("sshd on port 2222 only"), second.toString());
        assertTheImage(chroot, root);
        assertTrue(Files.readSymbolicLink(wants.resolve("ssh.service")).toString().endsWith("/systemd/system/ssh.service"),
                "the system sshd is enabled");
        assertTrue(Files.readString(root.resolve("etc/ssh/sshd_config.d/kiln-port.conf")).contains("\nPort 2222\n"));
        System.out.printf("[ProvisionInChrootTest] provision.sh: first run %.1f s, second run %.1f s; whole test %.1f s%n",
                first.seconds(), second.seconds(), (System.nanoTime() - t0) / 1e9);
    }

    /**
     * Each kind's variable file, built into the shared root: its packages (from deb.debian.org) and
     * groups as packer reads them from the file, and a user script: the recipe's own where it needs
     * no network beyond Debian's (preview.sh pulls nothing with its image list empty as shipped;
     * server.sh configures nginx), a small one of the test's for the dev box (scripts/devbox.sh
     * fetches BeakerX from PyPI and Leiningen's dependencies from Clojars). Then the image keeps its
     * guarantees (check-image.sh passes, plus this test's own checks) and a service of that kind,
     * started by the image's own agent as a build of the build user, answers on loopback.
     */
    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"preview", "devbox", "server"})
    @Order(2)
    void eachKindsImageKeepsItsGuaranteesAndRunsAServiceOfItsKindUnderTheAgent(String kind) throws Exception {
        Path root = root();
        Map<String, Object> vars = ImageAndUnitTest.packerVariables(ImageAndUnitTest.PACKER_DIR.resolve(kind + ".pkrvars.hcl"));
        @SuppressWarnings("unchecked")
        List<String> packages = (List<String>) vars.get("packages");
        @SuppressWarnings("unchecked")
        List<String> groups = (List<String>) vars.get("groups");
        assertFalse(packages.isEmpty(), kind + " adds packages: " + vars);
        String userScript = "devbox".equals(kind)
                ? "#!/bin/bash\nset -euo pipefail\necho \"dev box user script as $(id -un)\"\n"
                        + "python3 -c 'import notebook, ipykernel; print(\"notebook\", notebook.__version__)'\n"
                : Files.readString(Path.of(String.valueOf(vars.get("user_script"))));

        Build b = build(new Vars(0, packages, groups, userScript));
        b.assertSucceeded();
        Result du = inChroot(chroot, root, List.of("du", "-sxm", "--exclude=/var/tmp/kiln-test-debs", "/"));
        System.out.printf("[ProvisionInChrootTest] %s: build %.1f s; the root file system uses %s MB (packages of the kinds before accumulate)%n",
                kind, b.seconds(), du.stdout().split("\\s+")[0]);
        String log = b.provision().stdout();
        assertTrue(log.contains("and extra_packages: " + String.join(" ", packages)), b.toString());
        assertTrue(log.contains("[provision] running the user script (user_script)"), b.toString());
        assertTrue(log.contains(switch (kind) {
            case "preview" -> "[user-script] no images to pre-pull (list them in IMAGES in packer/scripts/preview.sh)";
            case "devbox" -> "[user-script] notebook 6.";
            default -> "[user-script] nginx: configuration file /etc/nginx/nginx.conf test is successful";
        }), "the user script's output is in the build log, prefixed:\n" + b);
        assertTrue(b.check().stdout().contains("[check-image] ok"), b.toString());
        assertTheImage(chroot, root);

        Result installed = inChroot(chroot, root, concat(List.of("dpkg-query", "-W", "-f", "${Package} ${db:Status-Status}\\n"), packages));
        assertEquals(0, installed.exitCode(), installed.toString());
        assertEquals(packages.size(), installed.stdout().lines().filter(l -> l.endsWith(" installed")).count(), installed.toString());
        Result ids = inChroot(chroot, root, List.of("id", "-nG", "kiln"));
        assertEquals(new TreeSet<>(concat(List.of("kiln"), groups)), new TreeSet<>(List.of(ids.stdout().strip().split(" "))),
                "the build user's groups are exactly build_user_groups: " + ids);
        if ("server".equals(kind)) {
            assertTrue(Files.isSymbolicLink(root.resolve("etc/systemd/system/multi-user.target.wants/nginx.service")),
                    "nginx starts at each boot of the image");
        }
        runsUnderTheAgent(root, kind);
    }

    /**
     * The image's own agent ({@code /opt/kiln/kiln-agent.jar} on the image's Java, with the unit's
     * JVM options) started in the chroot in local mode, and the kiln CLI of this build running a
     * command build there, as the build user, that starts the kind's service, asks it something
     * over loopback and stops it. Stand-ins, where the real thing cannot run here: the preview's
     * app is python3's http.server (what docker-compose would start needs dockerd, which needs
     * cgroups, overlayfs and iptables that a chroot in CI does not give; Docker's and compose's
     * clients run); the dev box's REPL is Clojure's own socket REPL from Debian's clojure jar
     * (lein repl fetches nREPL from Clojars); nginx runs as the build user on a loopback port
     * instead of as root on port 80.
     */
    private void runsUnderTheAgent(Path root, String kind) throws Exception {
        Path test = Files.createDirectories(root.resolve("etc/kiln-test"));
        Path state = root.resolve("var/lib/kiln-test");
        Path tree = root.resolve("srv/kiln-test");
        Kiln kiln = new Kiln(dir.resolve("home-" + kind));
        assertEquals(0, kiln.run("init").exitCode());
        FleetCa ca = FleetCa.load(kiln.configDir().resolve("fleet-ca.crt"), kiln.configDir().resolve("fleet-ca.key"));
        Instant now = Instant.now();
        IssuedCertificate cert = ca.issueServer("kiln-agent test", List.of("localhost"), List.of("127.0.0.1"),
                now.minus(Duration.ofMinutes(5)), now.plus(Duration.ofDays(1)));
        Pem.writePublic(test.resolve("agent.crt"), cert.certificatePem());
        Pem.writePrivate(test.resolve("agent.key"), cert.privateKeyPem());
        Files.copy(kiln.configDir().resolve("fleet-ca.crt"), test.resolve("ca.crt"), StandardCopyOption.REPLACE_EXISTING);
        int port = FreePorts.loopbackPort();
        Files.writeString(test.resolve("agent.yml"), """
                kiln:
                  mode: local
                  state-dir: /var/lib/kiln-test
                  grpc:
                    host: 127.0.0.1
                    port: %d
                  tls:
                    cert: /etc/kiln-test/agent.crt
                    key: /etc/kiln-test/agent.key
                    ca: /etc/kiln-test/ca.crt
                  lease:
                    backstop: none
                    power-off: exit
                """.formatted(port));
        Files.createDirectories(tree);
        Files.writeString(tree.resolve("service.sh"), SERVICE_PRELUDE + switch (kind) {
            case "preview" -> PREVIEW_SERVICE;
            case "devbox" -> DEVBOX_SERVICE;
            default -> SERVER_SERVICE;
        });
        Result chown = inChroot(chroot, root, List.of("chown", "-R", "kiln:kiln", "/srv/kiln-test"));
        assertEquals(0, chown.exitCode(), chown.toString());

        List<String> command = new ArrayList<>(List.of(chroot.toString(), root.toString(), "/usr/bin/java"));
        command.addAll(unitJvmOptions());
        command.addAll(List.of("-jar", "/opt/kiln/kiln-agent.jar"));
        try (AgentProcess agent = AgentProcess.startCommand(command, Map.of("MICRONAUT_CONFIG_FILES", "/etc/kiln-test/agent.yml"))) {
            agent.awaitListening(Duration.ofSeconds(90));
            Kiln.Run run = kiln.run("build", "--agent", "127.0.0.1:" + port,
                    "--env", "PORT=" + FreePorts.loopbackPort(), "--env", "PORT2=" + FreePorts.loopbackPort(),
                    "/srv/kiln-test", "--", "bash", "service.sh");
            System.out.println("[ProvisionInChrootTest] " + kind + " service under the agent:\n" + run.out());
            assertEquals(0, run.exitCode(), run + "\nagent:\n" + agent.output());
            String out = run.out();
            assertTrue(out.contains("as kiln in groups"), out);
            switch (kind) {
                case "preview" -> {
                    assertTrue(out.contains("docker-compose version 1."), out);
                    assertTrue(out.contains("Docker version 20."), out);
                    assertTrue(out.contains("the app answers: preview of branch main"), out);
                }
                case "devbox" -> {
                    assertTrue(out.contains("javac 17."), out);
                    assertTrue(out.contains("Leiningen 2."), out);
                    assertTrue(out.contains("jupyter answers: {\"version\": \"6."), out);
                    assertTrue(out.matches("(?s).*\nkernel: \\{\"id\": \"[0-9a-f-]+\", \"name\": \"python3\".*"), out);
                    assertTrue(out.contains("the REPL answers: 42"), out);
                }
                default -> {
                    assertTrue(out.contains("through nginx: visits: 1"), out);
                    assertTrue(out.contains("through nginx: visits: 2"), out);
                    assertTrue(out.contains("sqlite3 counts 2 visits"), out);
                }
            }
        } finally {
            deleteTree(test);
            deleteTree(state);
            deleteTree(tree);
        }
    }

    /** The unit's JVM options, as ExecStart passes them (the class-data archive's included). */
    private static List<String> unitJvmOptions() throws IOException {
        List<String> options = new ArrayList<>();
        Matcher m = Pattern.compile("(?m)^Environment=\"(?:AGENT_JAVA_OPTS|AGENT_CDS_OPTS)=(.*)\"$").matcher(Files.readString(ImageAndUnitTest.UNIT));
        while (m.find()) {
            options.addAll(List.of(m.group(1).trim().split("\\s+")));
        }
        assertFalse(options.isEmpty(), "the unit sets AGENT_JAVA_OPTS");
        return options;
    }

    /** Waits (bounded) for something to answer; every service script starts with it. */
    static final String SERVICE_PRELUDE = """
            set -euo pipefail
            echo "as $(id -un) in groups $(id -nG)"
            pids=()
            trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT
            # Bounded: 60 s for a JVM or Jupyter to start on a busy CI machine.
            answers() {
              for _ in $(seq 600); do
                "$@" >/dev/null 2>&1 && return 0
                sleep 0.1
              done
              echo "no answer from: $*"
              return 1
            }
            """;

    static final String PREVIEW_SERVICE = """
            docker --version
            docker-compose version --short | sed 's/^/docker-compose version /'
            git --version
            mkdir -p app
            echo "preview of branch main" > app/index.html
            python3 -m http.server --bind 127.0.0.1 --directory app "$PORT" & pids+=($!)
            answers curl -fsS "http://127.0.0.1:$PORT/"
            echo "the app answers: $(curl -fsS "http://127.0.0.1:$PORT/")"
            """;

    static final String DEVBOX_SERVICE = """
            javac -version 2>&1
            lein version
            jupyter notebook --no-browser --ip=127.0.0.1 --port="$PORT" --NotebookApp.token=kiln-test --notebook-dir="$PWD" \
              >jupyter.log 2>&1 & pids+=($!)
            answers curl -fsS "http://127.0.0.1:$PORT/api"
            echo "jupyter answers: $(curl -fsS "http://127.0.0.1:$PORT/api")"
            # A python3 kernel started through the notebook server's API, as a browser's "New" does.
            echo "kernel: $(curl -fsS -H 'Authorization: token kiln-test' -X POST -d '{"name": "python3"}' \\
              "http://127.0.0.1:$PORT/api/kernels")"
            java -Dclojure.server.repl="{:port $PORT2 :accept clojure.core.server/repl}" -cp /usr/share/java/clojure.jar \
              clojure.main -e '@(promise)' & pids+=($!)
            answers bash -c "exec 3<>/dev/tcp/127.0.0.1/$PORT2"
            exec 3<>"/dev/tcp/127.0.0.1/$PORT2"
            printf '(* 6 7)\n:repl/quit\n' >&3
            echo "the REPL answers: $(tr -d '\r' <&3 | sed -n 's/^user=> //p' | head -1)"
            """;

    static final String SERVER_SERVICE = """
            mkdir -p app data tmp
            cat >app/app.py <<'PY'
            import os, sqlite3
            from flask import Flask
            app = Flask(__name__)

            @app.route("/")
            def index():
                with sqlite3.connect(os.environ["APP_DB"]) as db:
                    db.execute("create table if not exists visits (at text)")
                    db.execute("insert into visits values (datetime('now'))")
                    n = db.execute("select count(*) from visits").fetchone()[0]
                return f"visits: {n}\\n"
            PY
            APP_DB="$PWD/data/app.db" gunicorn --bind "127.0.0.1:$PORT2" --chdir app app:app & pids+=($!)
            cat >nginx.conf <<NGINX
            pid $PWD/tmp/nginx.pid;
            error_log stderr;
            daemon off;
            events {}
            http {
              access_log off;
              client_body_temp_path $PWD/tmp/body;
              proxy_temp_path $PWD/tmp/proxy;
              fastcgi_temp_path $PWD/tmp/fastcgi;
              uwsgi_temp_path $PWD/tmp/uwsgi;
              scgi_temp_path $PWD/tmp/scgi;
              server {
                listen 127.0.0.1:$PORT;
                location / { proxy_pass http://127.0.0.1:$PORT2; }
              }
            }
            NGINX
            nginx -e stderr -p "$PWD" -c "$PWD/nginx.conf" & pids+=($!)
            # Any answer (a 404 here) shows each is up, without counting a visit.
            answers curl -sS -o /dev/null "http://127.0.0.1:$PORT2/ready"
            answers curl -sS -o /dev/null "http://127.0.0.1:$PORT/ready"
            echo "through nginx: $(curl -fsS "http://127.0.0.1:$PORT/")"
            echo "through nginx: $(curl -fsS "http://127.0.0.1:$PORT/")"
            echo "sqlite3 counts $(sqlite3 data/app.db 'select count(*) from visits') visits"
            """;

    /**
     * A user script that breaks guarantees fails the build, each broken one named; one that fails,
     * or has no #! line, fails provision.sh with its exit status. Last: it leaves the shared root broken.
     */
    @Test
    @Order(3)
    void aUserScriptThatBreaksAGuaranteeOrFailsFailsTheBuildNamingIt() throws Exception {
        Build broken = build(new Vars(0, List.of(), List.of(), """
                #!/bin/sh
                set -e
                systemctl enable ssh.service
                rm /etc/kiln/imds.nft
                echo 'kiln ALL=(ALL) NOPASSWD: ALL' > /etc/sudoers.d/kiln
                echo "broke three guarantees"
                """));
        assertEquals(0, broken.provision().exitCode(), broken.toString());
        assertTrue(broken.provision().stdout().contains("[user-script] broke three guarantees"), broken.toString());
        assertEquals(1, broken.check().exitCode(), broken.toString());
        String err = broken.check().stderr();
        assertTrue(err.contains("[check-image] broken guarantee: no system sshd on port 22: ssh.service is enabled"), broken.toString());
        assertTrue(err.contains("[check-image] broken guarantee: IMDS for root only (kiln-imds.service, /etc/kiln/imds.nft): "
                + "/etc/kiln/imds.nft is missing or not a regular file"), broken.toString());
        assertTrue(err.contains("[check-image] broken guarantee: IMDS for root only (kiln-imds.service, /etc/kiln/imds.nft): "
                + "sudo gives the build user 'kiln' rights: /etc/sudoers.d/kiln:1:kiln ALL=(ALL) NOPASSWD: ALL"), broken.toString());
        assertTrue(err.contains("[check-image] 3 broken guarantee(s): the image is not registered"), broken.toString());

        Build failing = build(new Vars(0, List.of(), List.of(), "#!/bin/sh\necho 'half done'\nexit 3\n"));
        assertEquals(1, failing.provision().exitCode(), failing.toString());
        assertTrue(failing.provision().stdout().contains("[user-script] half done"), failing.toString());
        assertTrue(failing.provision().stderr().contains(
                "[provision] error: the user script (user_script) failed with exit status 3 (its output is above)"), failing.toString());

        Build noShebang = build(new Vars(0, List.of(), List.of(), "apt-get install -y cowsay\n"));
        assertEquals(1, noShebang.provision().exitCode(), noShebang.toString());
        assertTrue(noShebang.provision().stderr().contains("the user script (user_script) has no #! line"), noShebang.toString());
        assertFalse(noShebang.provision().stdout().contains("apt-get"), "nothing ran before the refusal: " + noShebang);
    }

    private static List<String> concat(List<String> a, List<String> b) {
        List<String> out = new ArrayList<>(a);
        out.addAll(b);
        return out;
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

    // ---------------------------------------------------------------- running the build

    /** What provision.sh and then check-image.sh did (no check when provision.sh failed). */
    record Build(Result provision, Result check) {
        double seconds() {
            return provision.seconds() + (check == null ? 0 : check.seconds());
        }

        void assertSucceeded() {
            assertEquals(0, provision.exitCode(), toString());
            assertEquals(0, check.exitCode(), toString());
        }

        @Override
        public String toString() {
            return "--- provision.sh\n" + provision + (check == null ? "" : "--- check-image.sh\n" + check);
        }
    }

    /**
     * The template's build in the chroot, as packer runs it: the staging directory uploaded (with
     * the user's script when there is one), provision.sh as root with the template's variables,
     * then check-image.sh with the checksums of the shipped files.
     */
    private Build build(Vars vars) throws Exception {
        Path root = root();
        Path staging = Files.createDirectories(root.resolve(STAGING.substring(1)));
        Files.copy(AgentProcess.jar(), staging.resolve("kiln-agent.jar"), StandardCopyOption.REPLACE_EXISTING);
        Files.copy(ImageAndUnitTest.UNIT, staging.resolve("kiln-agent.service"), StandardCopyOption.REPLACE_EXISTING);
        Files.copy(ImageAndUnitTest.IMAGE_SETTINGS, staging.resolve("agent.yml"), StandardCopyOption.REPLACE_EXISTING);
        for (String f : List.of("kiln-boot-backstop", "kiln-boot-backstop.service")) {
            Files.copy(ImageAndUnitTest.ROOT.resolve("systemd").resolve(f), staging.resolve(f), StandardCopyOption.REPLACE_EXISTING);
        }
        Files.copy(ImageAndUnitTest.IMDS_RULE, staging.resolve("kiln-imds.nft"), StandardCopyOption.REPLACE_EXISTING);
        Files.copy(ImageAndUnitTest.IMDS_UNIT, staging.resolve("kiln-imds.service"), StandardCopyOption.REPLACE_EXISTING);
        if (vars.userScript() != null) {
            Files.writeString(staging.resolve("user-script"), vars.userScript());
        }
        Path script = root.resolve("tmp/provision.sh");
        Path check = root.resolve("tmp/check-image.sh");
        Files.copy(ImageAndUnitTest.PROVISION, script, StandardCopyOption.REPLACE_EXISTING);
        Files.copy(CHECK, check, StandardCopyOption.REPLACE_EXISTING);
        List<String> env = List.of("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "LANG=C.UTF-8",
                "SYSTEM_SSHD_PORT=" + vars.sshdPort(), "BUILD_USER_GROUPS=" + String.join(" ", vars.groups()));
        try {
            List<String> provision = new ArrayList<>(List.of(chroot.toString(), root.toString(), "/usr/bin/env", "-i"));
            provision.addAll(env);
            provision.addAll(List.of("PROVISION_STAGING=" + STAGING, "EXTRA_PACKAGES=" + String.join(" ", vars.packages()),
                    "bash", "/tmp/provision.sh"));
            Result provisioned = run(provision, Duration.ofMinutes(20));
            if (provisioned.exitCode() != 0) {
                return new Build(provisioned, null);
            }
            List<String> checked = new ArrayList<>(List.of(chroot.toString(), root.toString(), "/usr/bin/env", "-i"));
            checked.addAll(env);
            checked.addAll(shippedChecksums());
            checked.addAll(List.of("bash", "/tmp/check-image.sh"));
            return new Build(provisioned, run(checked, Duration.ofMinutes(2)));
        } finally {
            Files.deleteIfExists(script);
            Files.deleteIfExists(check);
            // A failed build leaves its staging directory; the next build starts from a clean one.
            deleteTree(staging);
        }
    }

    /** The SHA256_* variables the template gives check-image.sh: checksums of the shipped files. */
    static List<String> shippedChecksums() throws Exception {
        Map<String, Path> files = new java.util.LinkedHashMap<>();
        files.put("SHA256_AGENT_UNIT", ImageAndUnitTest.UNIT);
        files.put("SHA256_BACKSTOP", ROOT.resolve("systemd/kiln-boot-backstop"));
        files.put("SHA256_BACKSTOP_UNIT", ROOT.resolve("systemd/kiln-boot-backstop.service"));
        files.put("SHA256_IMDS_RULE", ImageAndUnitTest.IMDS_RULE);
        files.put("SHA256_IMDS_UNIT", ImageAndUnitTest.IMDS_UNIT);
        List<String> out = new ArrayList<>();
        for (var e : files.entrySet()) {
            byte[] sum = java.security.MessageDigest.getInstance("SHA-256").digest(Files.readAllBytes(e.getValue()));
            out.add(e.getKey() + "=" + java.util.HexFormat.of().formatHex(sum));
        }
        return out;
    }

    private static void deleteTree(Path p) throws IOException {
        if (!Files.exists(p, LinkOption.NOFOLLOW_LINKS)) {
            return;
        }
        try (Stream<Path> all = Files.walk(p)) {
            for (Path f : all.sorted(java.util.Comparator.reverseOrder()).toList()) {
                Files.delete(f);
            }
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
