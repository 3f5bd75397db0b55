package dev.kiln.os;

import java.nio.file.Files;
import java.nio.file.Path;

/** Where a program is, for a child process given its own PATH. */
public final class Executables {

    private Executables() {
    }

    /**
     * The absolute path of {@code name} in the first folder of {@code path} that holds it as an
     * executable, or {@code name} unchanged when none does. The JDK looks a bare name up in the
     * JVM's own PATH, whatever PATH the child is given.
     */
    public static String find(String name, String path) {
        if (name.contains("/") || path == null) {
            return name;
        }
        for (String dir : path.split(":")) {
            if (dir.isEmpty()) {
                continue;
            }
            Path candidate = Path.of(dir, name);
            if (Files.isRegularFile(candidate) && Files.isExecutable(candidate)) {
                return candidate.toString();
            }
        }
        return name;
    }
}
