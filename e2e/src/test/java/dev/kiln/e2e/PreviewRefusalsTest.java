package dev.kiln.e2e;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * What `kiln launch` refuses about services, boot scripts and labels, on the local provider:
 * each refusal exits 2, names the problem (and the expected form), and launches nothing. The
 * EC2 side (user data limit, the agent's own ports) is in {@link PreviewEc2Test}.
 */
class PreviewRefusalsTest {

    @TempDir
    Path dir;

    Kiln kiln;

    @BeforeEach
    void setUp() {
        kiln = new Kiln(dir.resolve("home"));
        assertEquals(0, kiln.run("init").exitCode());
    }

    @AfterEach
    void tearDown() {
        // Only if a refusal failed to refuse: nothing must stay running.
        Matcher m = Pattern.compile("\"id\": \"(local-[0-9a-f]+)\"").matcher(kiln.run("ls", "-o", "json").out());
        while (m.find()) {
            kiln.run("terminate", m.group(1), "--force");
        }
    }

    /** Runs `kiln launch ARGS`, expects exit 2 with {@code message} on stderr, and no instance made. */
    void refused(String message, String... args) throws Exception {
        Kiln.Run run = kiln.run(Stream.concat(Stream.of("launch", "--ttl", "10m"), Stream.of(args)).toArray(String[]::new));
        assertEquals(2, run.exitCode(), run.toString());
        assertTrue(run.err().contains(message), "expected '" + message + "' in:\n" + run.err());
        Path instances = kiln.stateDir().resolve("fleet/instances");
        List<Path> made = new ArrayList<>();
        if (Files.isDirectory(instances)) {
            try (Stream<Path> s = Files.list(instances)) {
                s.forEach(made::add);
            }
        }
        assertEquals(List.of(), made, "nothing was launched");
    }

    @Test
    void malformedDuplicateOrUnknownServicesAreRefusedNamingTheProblem() throws Exception {
        refused("--service 'web': is not NAME:PORT[/PATH][=COMMAND] (e.g. web:8000=python3 -m http.server 8000, or"
                + " shop:8080/admin for a port something else serves)", "--service", "web");
        refused("--service 'web:80a0=x': is not NAME:PORT[/PATH][=COMMAND]", "--service", "web:80a0=x");
        refused("--service 'Web:8000': the name 'Web' must be 1-31 lower-case letters", "--service", "Web:8000");
        refused("--service 'web:8000=': nothing follows '='", "--service", "web:8000=");
        refused("--service 'web:99999': port 99999 is not 1-65535", "--service", "web:99999");
        refused("port 8000 is declared by 2 services (web:8000=python3 -m http.server 8000, api:8000); nothing was"
                + " launched: give each service its own port",
                "--service", "web:8000=python3 -m http.server 8000", "--service", "api:8000");
        refused("--service gives the name 'web' 2 times (web:8000, web:8001)", "--service", "web:8000", "--service", "web:8001");
        refused("--service-keeps-alive repl names no service of this launch (declared: web)",
                "--service", "web:8000", "--service-keeps-alive", "repl");
    }

    @Test
    void aBootScriptThatIsNotARegularReadableSmallTextFileIsRefused() throws Exception {
        refused("--boot-script " + dir + " is a directory; give the script file itself", "--boot-script", dir.toString());
        refused("--boot-script " + dir.resolve("missing.sh") + ": no such file", "--boot-script", dir.resolve("missing.sh").toString());
        Path fifo = dir.resolve("fifo");
        Process mkfifo = new ProcessBuilder("mkfifo", fifo.toString()).inheritIO().start();
        assertTrue(mkfifo.waitFor(10, TimeUnit.SECONDS) && mkfifo.exitValue() == 0, "mkfifo");
        refused("--boot-script " + fifo + " is not a regular file (a device, pipe or socket)", "--boot-script", fifo.toString());
        Path big = Files.writeString(dir.resolve("big.sh"), "#!/bin/sh\n" + "#".repeat(16384) + "\n");
        refused("--boot-script " + big + " is larger than 16384 bytes, all the user data EC2 takes; nothing was launched",
                "--boot-script", big.toString());
        Path binary = Files.write(dir.resolve("a.out"), new byte[] {0x7f, 'E', 'L', 'F', 2, 1, 1, 0, (byte) 0xff});
        refused("--boot-script " + binary + " is not UTF-8 text", "--boot-script", binary.toString());
        // Root reads a file whatever its mode: an unreadable file is only one for another user.
        if (!"root".equals(System.getProperty("user.name"))) {
            Path locked = Files.writeString(dir.resolve("locked.sh"), "#!/bin/sh\n");
            Files.setPosixFilePermissions(locked, java.util.Set.of());
            refused("--boot-script " + locked + " cannot be read", "--boot-script", locked.toString());
        }
    }

    @Test
    void labelsMustBeUsableAsEnvironmentVariables() throws Exception {
        refused("the labels 'pr-id' and 'pr_id' would both reach the boot script and services as KILN_LABEL_PR_ID",
                "--label", "pr-id=1", "--label", "pr_id=2");
        refused("label name 'app.kubernetes.io/name' must be 1-63 letters, digits, '_' or '-'",
                "--label", "app.kubernetes.io/name=shop");
    }

    @Test
    void aTemplatesServicesAreCheckedLikeFlags() throws Exception {
        Files.writeString(kiln.configDir().resolve("config.yml"), """
                templates:
                  preview:
                    ttl: 30m
                    services:
                      - web:8000=python3 -m http.server 8000
                      - {name: docs, port: 8000, path: /docs/}
                  typo:
                    services:
                      - {name: web, port: 8000, cmd: make serve}
                """);
        refused("port 8000 is declared by 2 services (web:8000=python3 -m http.server 8000, docs:8000/docs/)",
                "--role", "preview");
        Kiln.Run typo = kiln.run("launch", "--role", "typo");
        assertEquals(3, typo.exitCode(), typo.toString());
        assertTrue(typo.err().contains("template 'typo': services: unknown key 'cmd'"), typo.err());
        // A relative boot-script in config.yml is relative to config.yml's directory.
        Files.writeString(kiln.configDir().resolve("config.yml"), """
                templates:
                  preview:
                    boot-script: boot.sh
                """);
        refused("--boot-script " + kiln.configDir().resolve("boot.sh") + ": no such file", "--role", "preview");
    }
}
