package dev.kiln.e2e;

import dev.kiln.e2e.RepoScript.Result;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.FileSystems;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardWatchEventKinds;
import java.nio.file.WatchKey;
import java.nio.file.WatchService;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * bin/kiln runs the CLI on C1 alone, which suits OpenSSL; where OpenSSL cannot load, the CLI's
 * gRPC TLS falls back to the JDK's, whose AES-GCM is slow without C2, and `kiln build` says so
 * on stderr, with the way out. The real CLI and a real local agent, as a user runs them; the
 * fallback is forced with Netty's own switch, as a platform without BoringSSL would see it.
 * bin/kiln unpacks BoringSSL's library once, beside the jar, so no command extracts it again,
 * and never loads it through a link planted where it unpacks it.
 */
class CliTlsFallbackTest {

    @TempDir
    Path home;

    Result kiln(Map<String, String> env, String... args) throws IOException, InterruptedException {
        Map<String, String> all = new HashMap<>(env);
        all.putIfAbsent("KILN_NO_CDS", "1");
        return RepoScript.kiln(home, all, args);
    }

    @AfterEach
    void down() throws Exception {
        kiln(Map.of(), "down", "--local");
    }

    @Test
    void buildSaysWhenTheClisTlsFellBackToTheJdks() throws Exception {
        // The build user must reach the tree: the home is made 0700 by JUnit.
        Files.setPosixFilePermissions(home, PosixFilePermissions.fromString("rwx--x--x"));
        Path tree = Files.createDirectories(home.resolve("tree"));
        Files.setPosixFilePermissions(tree, PosixFilePermissions.fromString("rwxrwxrwx"));
        Result up = kiln(Map.of(), "up", "--local", "--ssh-port", "0");
        assertEquals(0, up.code(), up.err());

        Result fallback = kiln(Map.of("KILN_JAVA_OPTS", "-Dio.netty.handler.ssl.noOpenSsl=true"),
                "build", tree.toString(), "--", "echo", "hello from the build");
        assertEquals(0, fallback.code(), fallback.err());
        assertTrue(fallback.out().contains("hello from the build"), fallback.out());
        assertTrue(fallback.err().contains("kiln: note: gRPC TLS runs on the JDK's, as OpenSSL is unavailable here "
                + "(OpenSSL was explicit disabled with -Dio.netty.handler.ssl.noOpenSsl=true); for faster log streaming, "
                + "give the CLI its optimising compiler back: KILN_JAVA_OPTS=-XX:TieredStopAtLevel=4"), fallback.err());

        Result chosen = kiln(Map.of("KILN_JAVA_OPTS", "-Dkiln.tls.provider=jdk"),
                "build", tree.toString(), "--", "echo", "hello again");
        assertEquals(0, chosen.code(), chosen.err());
        assertFalse(chosen.err().contains("note: gRPC TLS"), "a chosen JDK TLS needs no note: " + chosen.err());

        Result usual = kiln(Map.of(), "build", tree.toString(), "--", "echo", "hello once more");
        assertEquals(0, usual.code(), usual.err());
        assertTrue(usual.out().contains("hello once more"), usual.out());
        assertFalse(usual.err().contains("note: gRPC TLS"), usual.err());
    }

    @Test
    void theClisBoringSslIsUnpackedOnceBesideTheJarNotIntoTheTemporaryDirectory() throws Exception {
        Result up = kiln(Map.of(), "up", "--local", "--ssh-port", "0");
        assertEquals(0, up.code(), up.err());
        // Netty would extract the library into java.io.tmpdir at every start (and delete it at
        // exit): what the commands create there is watched while they run.
        Path tmp = Files.createDirectories(home.resolve("tmp"));
        List<String> created = new ArrayList<>();
        try (WatchService watch = FileSystems.getDefault().newWatchService()) {
            tmp.register(watch, StandardWatchEventKinds.ENTRY_CREATE);
            for (int i = 0; i < 2; i++) {
                Result status = kiln(Map.of("KILN_JAVA_OPTS", "-Djava.io.tmpdir=" + tmp), "status");
                assertEquals(0, status.code(), status.err());
                assertTrue(status.out().matches("(?s).*state\\s+ready\n.*"), status.out());
            }
            for (WatchKey key = watch.poll(); key != null; key = watch.poll()) {
                key.pollEvents().forEach(e -> created.add(String.valueOf(e.context())));
            }
        }
        assertEquals(List.of(), created.stream().filter(n -> n.contains("netty_tcnative")).toList(),
                "nothing extracted into the temporary directory");
        Path jar = RepoScript.ROOT.resolve("controller/target/kiln.jar");
        Path unpacked = jar.resolveSibling("kiln-" + Files.size(jar) + "-" + Files.getLastModifiedTime(jar).toMillis() / 1000 + "-native");
        assertEquals("rwx------", PosixFilePermissions.toString(Files.getPosixFilePermissions(unpacked)),
                "the library's directory is the user's own");
        try (Stream<Path> files = Files.list(unpacked)) {
            assertEquals(1, files.filter(f -> f.getFileName().toString().startsWith("libnetty_tcnative_linux_")).count());
        }
    }

    @Test
    void aLinkWhereTheLibraryIsUnpackedIsNotFollowed() throws Exception {
        Result up = kiln(Map.of(), "up", "--local", "--ssh-port", "0");
        assertEquals(0, up.code(), up.err());
        assertEquals(0, kiln(Map.of(), "status").code(), "the library is unpacked");
        Path jar = RepoScript.ROOT.resolve("controller/target/kiln.jar");
        Path unpacked = jar.resolveSibling("kiln-" + Files.size(jar) + "-" + Files.getLastModifiedTime(jar).toMillis() / 1000 + "-native");
        // A working copy of the library behind a link: were the link followed, Netty would load
        // it from there and extract nothing.
        Path elsewhere = Files.createDirectories(home.resolve("elsewhere"));
        try (Stream<Path> files = Files.list(unpacked)) {
            for (Path lib : files.toList()) {
                Files.copy(lib, elsewhere.resolve(lib.getFileName()));
            }
        }
        deleteTree(unpacked);
        Files.createSymbolicLink(unpacked, elsewhere);
        try {
            Path tmp = Files.createDirectories(home.resolve("tmp"));
            List<String> created = new ArrayList<>();
            try (WatchService watch = FileSystems.getDefault().newWatchService()) {
                tmp.register(watch, StandardWatchEventKinds.ENTRY_CREATE);
                Result status = kiln(Map.of("KILN_JAVA_OPTS", "-Djava.io.tmpdir=" + tmp), "status");
                assertEquals(0, status.code(), status.err());
                for (WatchKey key = watch.poll(); key != null; key = watch.poll()) {
                    key.pollEvents().forEach(e -> created.add(String.valueOf(e.context())));
                }
            }
            assertEquals(1, created.stream().filter(n -> n.contains("netty_tcnative")).count(),
                    "Netty extracts its own copy rather than load one through the link: " + created);
            assertTrue(Files.isSymbolicLink(unpacked), "the link is left as it is");
        } finally {
            Files.delete(unpacked);
        }
    }

    static void deleteTree(Path dir) throws IOException {
        try (Stream<Path> files = Files.list(dir)) {
            for (Path f : files.toList()) {
                Files.delete(f);
            }
        }
        Files.delete(dir);
    }
}
