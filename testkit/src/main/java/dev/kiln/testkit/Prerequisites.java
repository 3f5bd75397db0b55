package dev.kiln.testkit;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.Assertions;
import org.junit.jupiter.api.Assumptions;

/**
 * Decides what happens when something a test needs is not on this machine.
 *
 * <p>On a developer's machine a missing prerequisite skips the test, with a message saying what is
 * missing and how to install it. Under CI (environment variable {@code CI=true}) the same thing
 * fails the test instead: CI installs everything through {@code .ci/run}, so a missing tool there
 * is a broken install step, never a reason to skip silently.
 */
public final class Prerequisites {

    /** The environment variable CI sets; only the value {@code true} turns skips into failures. */
    public static final String CI_VARIABLE = "CI";

    /** Directories holding root's tools ({@code losetup}, {@code sshd}) that a user's PATH may lack. */
    private static final List<String> SBIN_DIRECTORIES = List.of("/usr/local/sbin", "/usr/sbin", "/sbin");

    /** What to do about a prerequisite. */
    public enum Outcome {
        /** The prerequisite is there: run the test. */
        RUN,
        /** Missing on a developer's machine: skip the test. */
        SKIP,
        /** Missing under CI: fail the test. */
        FAIL
    }

    private Prerequisites() {
    }

    /**
     * Skips (locally) or fails (under {@code CI=true}) the calling test unless {@code present}.
     *
     * @param what what the test needs, e.g. "the losetup command"
     * @param present whether it is there
     * @param howToInstall how a person gets it, e.g. "apt-get install util-linux"
     */
    public static void require(String what, boolean present, String howToInstall) {
        require(what, present, howToInstall, System.getenv(CI_VARIABLE));
    }

    /**
     * Finds {@code command} on the PATH (and in the sbin directories root's tools live in), or
     * skips/fails the test as {@link #require} does.
     *
     * @param command a command name, or a path to an executable
     * @param howToInstall how a person gets it
     * @return the command's absolute path
     */
    public static Path requireCommand(String command, String howToInstall) {
        return requireCommand(command, howToInstall, System.getenv(CI_VARIABLE));
    }

    /**
     * Skips/fails the test unless it runs as root (uid 0), as loop devices and mounts need.
     *
     * @param why what needs root, e.g. "attaching loop devices"
     */
    public static void requireRoot(String why) {
        require("root (uid 0) for " + why, isRoot(),
                "run the tests as root, e.g. sudo mvn verify or in a root container");
    }

    /**
     * The decision, as a pure function of whether the thing is present and of the value of
     * {@code CI}: tests of this class pass the value in rather than changing the environment.
     *
     * @param present whether the prerequisite is there
     * @param ciValue the value of the {@code CI} environment variable, or null if unset
     * @return what to do
     */
    public static Outcome decide(boolean present, String ciValue) {
        if (present) {
            return Outcome.RUN;
        }
        return ciValue != null && ciValue.trim().equalsIgnoreCase("true") ? Outcome.FAIL : Outcome.SKIP;
    }

    /** {@link #require(String, boolean, String)} with the value of {@code CI} passed in. */
    static void require(String what, boolean present, String howToInstall, String ciValue) {
        Outcome outcome = decide(present, ciValue);
        String message = "Missing prerequisite: " + what + ". Install it: " + howToInstall;
        if (outcome == Outcome.FAIL) {
            Assertions.fail(message + " (CI=true: a missing prerequisite fails instead of skipping)");
        } else if (outcome == Outcome.SKIP) {
            Assumptions.abort(message);
        }
    }

    /** {@link #requireCommand(String, String)} with the value of {@code CI} passed in. */
    static Path requireCommand(String command, String howToInstall, String ciValue) {
        Optional<Path> found = findCommand(command, System.getenv("PATH"));
        require("the command '" + command + "'", found.isPresent(), howToInstall, ciValue);
        return found.orElseThrow();
    }

    /**
     * Looks {@code command} up the way a shell would, then in the sbin directories.
     *
     * @param command a bare name, or a path (anything containing '/') that is checked as it is
     * @param pathVariable the value of PATH, or null
     * @return the absolute path of an executable regular file, if there is one
     */
    public static Optional<Path> findCommand(String command, String pathVariable) {
        if (command.contains("/")) {
            Path path = Path.of(command).toAbsolutePath();
            return isExecutableFile(path) ? Optional.of(path) : Optional.empty();
        }
        List<String> directories = new ArrayList<>();
        if (pathVariable != null) {
            directories.addAll(List.of(pathVariable.split(":")));
        }
        directories.addAll(SBIN_DIRECTORIES);
        for (String directory : directories) {
            if (directory.isEmpty()) {
                continue;
            }
            Path candidate = Path.of(directory, command).toAbsolutePath();
            if (isExecutableFile(candidate)) {
                return Optional.of(candidate);
            }
        }
        return Optional.empty();
    }

    /** Whether this JVM's effective uid is 0, read from /proc/self/status ("Uid: real effective ..."). */
    public static boolean isRoot() {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
                if (line.startsWith("Uid:")) {
                    String[] ids = line.substring("Uid:".length()).trim().split("\\s+");
                    return ids.length > 1 && ids[1].equals("0");
                }
            }
        } catch (IOException e) {
            // No /proc (not Linux): fall through to the user name.
        }
        return "root".equals(System.getProperty("user.name"));
    }

    private static boolean isExecutableFile(Path path) {
        return Files.isRegularFile(path) && Files.isExecutable(path);
    }
}
