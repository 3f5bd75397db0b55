package dev.kiln.agent.build;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ExecutorService;
import java.util.function.Consumer;
import java.util.function.Supplier;

/**
 * Runs one build's processes as the build user, in its work tree, with a clean environment: for
 * tup, {@code tup init} when needed, the profiles, then tup with its progress parsed; otherwise
 * the request's command.
 */
final class BuildRunner {

    private final ProcessLauncher launcher;
    private final Supplier<BuildUser> user;
    private final TupProfiles profiles;
    private final ExecutorService pool;

    /**
     * @param user resolves the build user (at each build, so a missing user is a build error)
     * @param pool where the stderr of each process is pumped
     */
    BuildRunner(ProcessLauncher launcher, Supplier<BuildUser> user, TupProfiles profiles, ExecutorService pool) {
        this.launcher = launcher;
        this.user = user;
        this.profiles = profiles;
        this.pool = pool;
    }

    /**
     * Runs the build to its end.
     *
     * @param progress told of tup's progress as it is parsed
     * @return the exit code of the last process run (143 when stopped before it started)
     */
    int run(BuildRecord record, RunningBuild run, Consumer<TupProgress.Count> progress) throws IOException {
        BuildUser buildUser = user.get();
        Map<String, String> env = new TreeMap<>(buildUser.environment());
        env.put("KILN_BUILD_ID", record.id());
        Path tree = record.spec().workTree().normalize();
        if (!record.spec().tup()) {
            env.putAll(record.spec().env());
            return runProcess(run, record.spec().argv(), buildUser, env, tree, null);
        }
        if (!Files.isDirectory(tree.resolve(".tup"), LinkOption.NOFOLLOW_LINKS)) {
            run.note("kiln: initialising tup in " + tree + "\n");
            int init = runProcess(run, List.of("tup", "init"), buildUser, env, tree, null);
            if (init != 0) {
                return init;
            }
        }
        List<String> argv = profiles.prepare(record.spec(), tree, buildUser, run::note);
        TupProgress tup = new TupProgress();
        return runProcess(run, argv, buildUser, env, tree, line -> tup.line(line).ifPresent(progress));
    }

    /** Runs one process with its output pumped into the log; {@code lines} parses stdout, or is null. */
    private int runProcess(RunningBuild run, List<String> argv, BuildUser buildUser, Map<String, String> env, Path dir,
                           Consumer<String> lines) throws IOException {
        if (run.stopRequested()) {
            return 143;
        }
        Process p = launcher.start(argv, dir, buildUser, env);
        run.process = p;
        OutputPump.drain(p, run.log, lines, pool);
        try {
            return p.waitFor();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted while waiting for the build", e);
        }
    }
}
