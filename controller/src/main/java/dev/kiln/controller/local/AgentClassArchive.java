package dev.kiln.controller.local;

import dev.kiln.controller.ExitCodes;
import dev.kiln.controller.KilnException;
import dev.kiln.controller.client.AgentEndpoint;
import dev.kiln.controller.client.ClientTls;
import dev.kiln.controller.config.KilnPaths;
import dev.kiln.controller.fleet.AgentUserData;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import java.util.stream.Stream;

/**
 * Where a local agent's AppCDS archive lives: the classes a started agent has loaded, parsed and
 * verified, which the next JVM maps from one file rather than reading them from the 35 MB jar
 * again (what that saves: docs/performance.md). The archive belongs to one agent jar
 * and one JDK build, so its name carries the jar's size and modification time and the JDK's
 * version: a rebuilt jar or another JDK never meets an old archive (a JVM handed a mismatched
 * archive ignores it and starts as without one; it never fails). It sits beside the jar when that
 * directory is writable (shared by every HOME, as with {@code bin/kiln}'s archive of the CLI), else
 * in the user's state directory. The first agent started without one makes it with a training
 * agent ({@link #options}).
 */
public final class AgentClassArchive {

    /** How long the training agent may take to answer, and then to exit and write the archive. */
    private static final Duration TRAINING_LIMIT = Duration.ofSeconds(60);

    /** Options that already decide class sharing: with any of them, Kiln adds none. */
    private static final List<String> USER_CHOICES = List.of("-Xshare", "-XX:SharedArchiveFile", "-XX:ArchiveClassesAtExit");

    private AgentClassArchive() {
    }

    /**
     * The archive for this jar and this JDK, whether or not it exists yet; empty when the user's
     * JVM options already choose about class sharing.
     */
    public static Optional<Path> of(Path agentJar, Path stateDir, List<String> javaOptions) throws IOException {
        if (javaOptions.stream().anyMatch(o -> USER_CHOICES.stream().anyMatch(o::startsWith))) {
            return Optional.empty();
        }
        Path jar = agentJar.toAbsolutePath();
        Path dir = Files.isWritable(jar.getParent()) ? jar.getParent() : stateDir.resolve("cds");
        String jdk = Runtime.version().toString().replaceAll("[^A-Za-z0-9.+-]", "_");
        return Optional.of(dir.resolve("kiln-agent-" + Files.size(jar) + "-" + Files.getLastModifiedTime(jar).toMillis()
                + "-jdk" + jdk + ".jsa"));
    }

    /** The JVM options that use an existing archive, quietly (a mismatch is not worth a line in the agent's log). */
    public static List<String> useOptions(Path archive) {
        return List.of("-XX:SharedArchiveFile=" + archive, "-Xlog:cds=off", "-Xlog:cds+dynamic=off");
    }

    /**
     * The options that map the agent's AppCDS archive; when there is none yet for this jar and
     * JDK, first makes one with a training agent: a throwaway agent (its own directory, port and
     * empty SSH directories, the certificates in {@code certs}) started with
     * {@code -XX:ArchiveClassesAtExit}, asked for its status and stopped with TERM, whose JVM writes
     * the archive as it exits. It is moved into place only after a clean exit, so a half-written
     * archive is never used. Any failure costs only the speed-up: the agent then starts without.
     *
     * @param javaOptions the agent's JVM options, which the training agent shares
     * @param certs       the directory holding the agent's certificate, key and fleet CA
     * @param tls         the controller's client TLS material, to ask the training agent for its status
     */
    static List<String> options(Path agentJar, KilnPaths paths, List<String> javaOptions, Path certs, ClientTls tls,
                                Consumer<String> narrate) throws IOException {
        Optional<Path> archive = of(agentJar, paths.stateDir(), javaOptions);
        if (archive.isEmpty()) {
            return List.of();
        }
        Path jsa = archive.get();
        if (Files.isRegularFile(jsa)) {
            return useOptions(jsa);
        }
        narrate.accept("making the agent's class-data archive (once per agent jar; later agents start faster): " + jsa);
        Path tmp = jsa.resolveSibling(jsa.getFileName() + "." + ProcessHandle.current().pid() + ".tmp");
        Path training = null;
        Process process = null;
        try {
            Files.createDirectories(jsa.getParent());
            training = Files.createTempDirectory(Files.createDirectories(paths.stateDir()), "cds-training-");
            LocalAgent trainer = new LocalAgent(paths, training).javaOptions(javaOptions).classArchive(false);
            for (String f : List.of("agent.crt", "agent.key", "fleet-ca.crt")) {
                Files.copy(certs.resolve(f), training.resolve(f));
            }
            int port = LocalAgent.freeLoopbackPort();
            Files.createDirectories(training.resolve("state"));
            Path outputs = Files.createDirectories(training.resolve("outputs"));
            Map<String, Object> kiln = trainer.settings(port);
            kiln.put("ssh", trainer.config().sshSettings(outputs, training.resolve("sources"), 0));
            Files.writeString(training.resolve("agent.yml"), AgentUserData.write(LocalAgent.UP_COMMENT, kiln), StandardCharsets.UTF_8);
            List<String> options = new ArrayList<>(javaOptions);
            options.addAll(List.of("-XX:ArchiveClassesAtExit=" + tmp, "-Xlog:cds=off", "-Xlog:cds+dynamic=off"));
            process = trainer.spawn(options, agentJar);
            trainer.awaitReady(process, new AgentEndpoint("127.0.0.1", port, null), tls, TRAINING_LIMIT);
            process.destroy(); // TERM: the JVM writes the archive on its way out
            if (!process.waitFor(TRAINING_LIMIT.toSeconds(), TimeUnit.SECONDS)) {
                throw new KilnException(ExitCodes.TIMEOUT, "the training agent did not exit within 60 s of TERM");
            }
            int exit = process.exitValue();
            if ((exit != 0 && exit != 143) || !Files.isRegularFile(tmp) || Files.size(tmp) == 0) {
                throw new KilnException(ExitCodes.FAILURE, "the training agent exited with status " + exit
                        + (Files.isRegularFile(tmp) ? "" : " and wrote no archive"));
            }
            Files.move(tmp, jsa, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            removeOthers(jsa);
            return useOptions(jsa);
        } catch (KilnException | IOException e) {
            narrate.accept("no class-data archive (" + e.getMessage() + "); the agent starts without it");
            return List.of();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new KilnException(ExitCodes.FAILURE, "interrupted while making the agent's class-data archive", e);
        } finally {
            if (process != null && process.isAlive()) {
                process.destroyForcibly();
            }
            Files.deleteIfExists(tmp);
            if (training != null) {
                deleteTree(training);
            }
        }
    }

    /** Removes the archives of other jars or JDKs next to {@code keep}. */
    static void removeOthers(Path keep) {
        try (DirectoryStream<Path> all = Files.newDirectoryStream(keep.getParent(), "kiln-agent-*.jsa")) {
            for (Path p : all) {
                if (!p.equals(keep)) {
                    Files.deleteIfExists(p);
                }
            }
        } catch (IOException ignored) {
            // Old archives only cost disk space.
        }
    }

    private static void deleteTree(Path root) {
        try (Stream<Path> all = Files.walk(root)) {
            all.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        } catch (IOException ignored) {
            // A leftover training directory under the state directory is harmless.
        }
    }
}
