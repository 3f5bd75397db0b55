package dev.kiln.e2e;

import java.io.File;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/** {@code bin/kiln forward} as a user runs it: a process of its own that runs until a signal. */
final class KilnForward {

    private KilnForward() {
    }

    /**
     * Starts {@code bin/kiln forward ARGS} with the Kiln home {@code home}; its stdout and stderr
     * go to {@code dir/NAME.out} and {@code dir/NAME.err}.
     */
    static Process start(Path dir, Path home, String name, String... args) throws IOException {
        List<String> cmd = new ArrayList<>(List.of(RepoScript.ROOT.resolve("bin/kiln").toString(), "forward"));
        cmd.addAll(List.of(args));
        ProcessBuilder pb = new ProcessBuilder(cmd).directory(RepoScript.ROOT.toFile())
                .redirectOutput(dir.resolve(name + ".out").toFile()).redirectError(dir.resolve(name + ".err").toFile())
                .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")));
        pb.environment().keySet().removeIf(k -> k.startsWith("KILN_") || k.startsWith("XDG_"));
        pb.environment().put("HOME", home.toString());
        pb.environment().put("XDG_CONFIG_HOME", home.resolve(".config").toString());
        pb.environment().put("XDG_STATE_HOME", home.resolve(".local/state").toString());
        pb.environment().put("KILN_NO_BUILD", "1");
        return pb.start();
    }

    /** The first line the forward prints on stdout (its local address), waiting while it runs. */
    static String firstLine(Process p, Path dir, String name) throws Exception {
        Path out = dir.resolve(name + ".out");
        for (int i = 0; i < 1200; i++) {
            String text = Files.exists(out) ? Files.readString(out) : "";
            if (text.contains("\n")) {
                return text.substring(0, text.indexOf('\n'));
            }
            if (!p.isAlive()) {
                throw new AssertionError("kiln forward ended with " + p.exitValue() + ": " + Files.readString(dir.resolve(name + ".err")));
            }
            Thread.sleep(100);
        }
        throw new AssertionError("kiln forward printed no address: " + Files.readString(dir.resolve(name + ".err")));
    }
}
