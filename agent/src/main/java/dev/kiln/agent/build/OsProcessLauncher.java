package dev.kiln.agent.build;

import dev.kiln.os.OsCommand;

import java.io.File;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Runs builds through util-linux: {@code setsid} for a new session and process group (it execs in
 * place, so the child's pid is the group id) and, when the agent is root, {@code setpriv} to become
 * the build user with its groups before the program starts.
 */
public final class OsProcessLauncher implements ProcessLauncher {

    @Override
    public Process start(List<String> argv, Path dir, BuildUser user, Map<String, String> env) throws IOException {
        List<String> command = new ArrayList<>();
        command.add("setsid");
        if (BuildUser.agentIsRoot()) {
            command.addAll(List.of("setpriv", "--reuid=" + user.uid(), "--regid=" + user.gid(), "--init-groups",
                    "--inh-caps=-all", "--"));
        }
        command.addAll(argv);
        ProcessBuilder pb = new ProcessBuilder(command).directory(dir.toFile())
                .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")));
        pb.environment().clear();
        pb.environment().putAll(env);
        return pb.start();
    }

    @Override
    public void signalGroup(long pgid, String signal) {
        if (pgid <= 1) {
            throw new IllegalArgumentException("refusing to signal process group " + pgid);
        }
        try {
            OsCommand.run(Duration.ofSeconds(10), List.of("kill", "-s", signal, "--", "-" + pgid));
        } catch (IOException e) {
            // the group is gone or kill is missing; the caller checks whether the build ended
        }
    }

    @Override
    public List<Long> processesOf(String buildId) {
        byte[] marker = ("KILN_BUILD_ID=" + buildId).getBytes(java.nio.charset.StandardCharsets.UTF_8);
        List<Long> found = new ArrayList<>();
        try (var dirs = Files.newDirectoryStream(Path.of("/proc"), "[0-9]*")) {
            for (Path d : dirs) {
                try {
                    byte[] env = Files.readAllBytes(d.resolve("environ"));
                    if (containsEntry(env, marker)) {
                        found.add(Long.parseLong(d.getFileName().toString()));
                    }
                } catch (IOException | RuntimeException ignored) {
                    // gone, or not ours to read
                }
            }
        } catch (IOException ignored) {
            // no /proc: nothing to find
        }
        return found;
    }

    /** True when the NUL-separated environment holds exactly this NAME=value entry. */
    static boolean containsEntry(byte[] env, byte[] entry) {
        int start = 0;
        for (int i = 0; i <= env.length; i++) {
            if (i == env.length || env[i] == 0) {
                if (i - start == entry.length && java.util.Arrays.equals(env, start, i, entry, 0, entry.length)) {
                    return true;
                }
                start = i + 1;
            }
        }
        return false;
    }
}
