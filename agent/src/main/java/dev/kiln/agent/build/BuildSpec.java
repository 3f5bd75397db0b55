package dev.kiln.agent.build;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;

/**
 * What to build.
 *
 * @param workTree           absolute path of the work tree
 * @param tup                true for a tup build, false for a command
 * @param profiles           tup: profiles to build (empty: all)
 * @param profileDefinitions tup: profiles to write as build-NAME/tup.config first
 * @param argv               command: the program and its arguments
 * @param env                command: extra environment variables
 * @param queue              wait behind a running build in the same work tree
 * @param requestId          client-chosen id for idempotency; empty if none
 * @param labels             free-form labels
 */
public record BuildSpec(Path workTree, boolean tup, List<String> profiles, List<Profile> profileDefinitions,
                        List<String> argv, Map<String, String> env, boolean queue, String requestId,
                        Map<String, String> labels) {

    private static final Pattern PROFILE = Pattern.compile("[A-Za-z0-9][A-Za-z0-9_.-]{0,63}");
    private static final Pattern CONFIG_KEY = Pattern.compile("[A-Z0-9_]+");
    private static final Pattern ENV_NAME = Pattern.compile("[A-Za-z_][A-Za-z0-9_]*");

    /**
     * A tup profile (variant): build-NAME/tup.config holding CONFIG_KEY=value lines.
     *
     * @param name   the profile's name
     * @param config keys without the CONFIG_ prefix
     */
    public record Profile(String name, Map<String, String> config) {
    }

    /** This spec with an empty command line (tests of validation). */
    BuildSpec withNoArgv() {
        return new BuildSpec(workTree, tup, profiles, profileDefinitions, List.of(), env, queue, requestId, labels);
    }

    /**
     * Checks the spec; throws with a message naming the field and what is allowed.
     */
    public void validate() {
        if (workTree == null || !workTree.isAbsolute()) {
            throw new IllegalArgumentException("work_tree must be an absolute path, not '" + workTree + "'");
        }
        if (workTree.normalize().equals(Path.of("/"))) {
            throw new IllegalArgumentException("work_tree must not be /");
        }
        if (tup) {
            for (String p : profiles) {
                checkProfile(p);
            }
            for (Profile p : profileDefinitions) {
                checkProfile(p.name());
                p.config().forEach((k, v) -> {
                    String key = k.startsWith("CONFIG_") ? k.substring("CONFIG_".length()) : k;
                    if (!CONFIG_KEY.matcher(key).matches()) {
                        throw new IllegalArgumentException("profile " + p.name() + ": config key '" + k
                                + "' must be upper case letters, digits and _");
                    }
                    if (v.contains("\n")) {
                        throw new IllegalArgumentException("profile " + p.name() + ": value of " + k + " must be one line");
                    }
                });
            }
        } else {
            if (argv.isEmpty() || argv.get(0).isBlank()) {
                throw new IllegalArgumentException("command.argv must name a program to run");
            }
            env.keySet().forEach(k -> {
                if (!ENV_NAME.matcher(k).matches()) {
                    throw new IllegalArgumentException("command.env: '" + k + "' is not a valid variable name");
                }
            });
        }
    }

    private static void checkProfile(String name) {
        if (!PROFILE.matcher(name).matches()) {
            throw new IllegalArgumentException("profile name '" + name
                    + "' must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit");
        }
    }
}
