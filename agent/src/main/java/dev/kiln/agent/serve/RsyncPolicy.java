package dev.kiln.agent.serve;

import dev.kiln.agent.fs.FsAccess;

import java.util.ArrayList;
import java.util.List;
import java.util.Set;

/**
 * Decides whether an {@code rsync --server ...} command line a client sent may run, and how.
 *
 * <p>Rules: readers may only run the sender (downloads); the owner may also run the receiver, only
 * into {@code /sources}. Every path must be inside one of the user's areas, without {@code ..};
 * options are checked against a list of those rsync clients send that neither write outside the
 * destination nor follow symbolic links (refused: {@code -L -k -K}, {@code --copy-*links},
 * {@code --remove-source-files}, {@code --files-from}, {@code --log-file}, {@code --temp-dir},
 * {@code --*-dest}, {@code --backup*}, batch files, {@code --daemon}, {@code -s} (protected
 * arguments cannot be checked), and anything unknown). A receiver gets {@code --safe-links}
 * added, so symbolic links that would point outside the tree are not created.
 */
public final class RsyncPolicy {

    /** A refused command line, with the reason for the user. */
    public static final class Refused extends Exception {
        public Refused(String message) {
            super(message);
        }
    }

    /**
     * What will run.
     *
     * @param sender   true for a download (rsync's sender), false for an upload
     * @param argv     the command line to run inside the sandbox
     * @param areas    the area names the command touches
     * @param paths    the paths it names, as the user's absolute paths
     */
    public record Decision(boolean sender, List<String> argv, Set<String> areas, List<String> paths) {
    }

    private static final String SHORT_ALLOWED = "vqcrlpogDtOJUNWHAXSxdRuznyiImCEb";

    private static final Set<String> LONG_ALLOWED = Set.of(
            "delete", "delete-before", "delete-during", "delete-after", "delete-delay", "delete-excluded",
            "delete-missing-args", "ignore-missing-args", "force", "ignore-errors", "partial", "partial-dir",
            "inplace", "append", "append-verify", "numeric-ids", "size-only", "ignore-times", "existing",
            "ignore-existing", "ignore-non-existing", "max-size", "min-size", "max-delete", "modify-window",
            "timeout", "bwlimit", "compress-level", "compress-choice", "zc", "zl", "checksum-choice", "cc",
            "checksum-seed", "block-size", "safe-links", "munge-links", "delay-updates", "fuzzy", "mkpath",
            "chmod", "no-implied-dirs", "omit-dir-times", "omit-link-times", "preallocate", "sparse", "info",
            "debug", "log-format", "from0", "no-W", "no-whole-file", "whole-file", "prune-empty-dirs",
            "no-r", "no-relative", "relative", "dirs", "no-inc-recursive", "no-i-r", "stop-after", "stop-at",
            "open-noatime", "trust-sender", "usermap", "groupmap", "chown", "atimes", "crtimes", "no-dirs",
            "fsync", "stats", "list-only", "human-readable", "8-bit-output", "itemize-changes", "out-format");

    private RsyncPolicy() {
    }

    /**
     * @param kind the user's kind
     * @param tree the user's tree (which areas exist and which are writable)
     * @param argv the words of the command line, starting with {@code rsync}
     */
    public static Decision check(UserKind kind, ServedTree tree, List<String> argv) throws Refused {
        if (argv.size() < 2 || !argv.get(0).equals("rsync") || !argv.get(1).equals("--server")) {
            throw new Refused("only `rsync --server` runs here (use rsync over ssh: rsync -a reader@host:/outputs/ dir/)");
        }
        boolean sender = false;
        List<String> options = new ArrayList<>();
        int i = 2;
        for (; i < argv.size(); i++) {
            String a = argv.get(i);
            if (a.equals(".")) {
                i++;
                break;
            }
            if (a.equals("--sender")) {
                sender = true;
                options.add(a);
            } else if (a.startsWith("--")) {
                String name = a.substring(2);
                String value = null;
                int eq = name.indexOf('=');
                if (eq >= 0) {
                    value = name.substring(eq + 1);
                    name = name.substring(0, eq);
                }
                if (!LONG_ALLOWED.contains(name)) {
                    throw new Refused("rsync option --" + name + " is not allowed here");
                }
                if (name.equals("partial-dir") && (value == null || value.contains("/") || value.equals("..")
                        || value.equals(".") || value.isEmpty())) {
                    throw new Refused("--partial-dir must be a plain directory name here");
                }
                options.add(a);
            } else if (a.startsWith("-") && a.length() > 1) {
                for (int k = 1; k < a.length(); k++) {
                    char c = a.charAt(k);
                    if (c == 'e') {
                        String caps = a.substring(k + 1);
                        if (!caps.matches("[.A-Za-z0-9]*")) {
                            throw new Refused("malformed rsync capability string");
                        }
                        break;
                    }
                    if (SHORT_ALLOWED.indexOf(c) < 0) {
                        throw new Refused("rsync option -" + c + " is not allowed here"
                                + ("LkK".indexOf(c) >= 0 ? " (symbolic links are not followed)" : "")
                                + (c == 's' ? " (protected arguments cannot be checked; drop -s/--secluded-args)" : ""));
                    }
                }
                options.add(a);
            } else {
                throw new Refused("unexpected rsync argument before '.': " + a);
            }
        }
        List<String> paths = argv.subList(i, argv.size());
        if (paths.isEmpty()) {
            throw new Refused("no path given");
        }
        if (!sender && kind != UserKind.OWNER) {
            throw new Refused("permission denied: " + kind.userName() + " may only download (the tree is read-only)");
        }
        if (!sender && paths.size() != 1) {
            throw new Refused("an upload names exactly one destination");
        }
        Set<String> areas = new java.util.TreeSet<>();
        List<String> cleanPaths = new ArrayList<>();
        for (String p : paths) {
            if (p.indexOf('\0') >= 0) {
                throw new Refused("malformed path");
            }
            for (String part : p.split("/")) {
                if (part.equals("..")) {
                    throw new Refused("'..' is not allowed in paths: " + p);
                }
            }
            List<String> names = ServedTree.normalise(p);
            if (names.isEmpty()) {
                throw new Refused("name a path under " + areaList(tree) + ", not " + (p.isEmpty() ? "the home directory" : p));
            }
            String first = names.get(0);
            if (first.matches(".*[*?\\[\\]].*")) {
                throw new Refused("wildcards are not allowed in the first path component: " + p);
            }
            Area area = tree.area(first).orElseThrow(() -> new Refused("no such directory: /" + first
                    + " (this user sees " + areaList(tree) + ")"));
            if (!sender && !area.writable()) {
                throw new Refused("permission denied: /" + area.name() + " is read-only");
            }
            areas.add(area.name());
            // Keep a trailing slash: it means "the contents of" to rsync.
            cleanPaths.add("/" + String.join("/", names) + (p.endsWith("/") && names.size() > 0 ? "/" : ""));
        }
        List<String> run = new ArrayList<>();
        run.add("rsync");
        run.add("--server");
        if (!sender) {
            run.add("--safe-links");
        }
        run.addAll(options);
        run.add(".");
        run.addAll(cleanPaths);
        return new Decision(sender, List.copyOf(run), areas, List.copyOf(cleanPaths));
    }

    /**
     * Refuses paths that run through a symbolic link leading out of their area, judged with
     * {@code access} (up to the first name with a wildcard, which rsync expands itself). rsync
     * follows links in the paths it is given; its sandbox holds only the user's areas and the
     * system's read-only programs, where rsync would find nothing or the sandbox's own
     * {@code /usr}; this check names the problem.
     */
    public static void requireInside(ServedTree tree, List<String> paths, FsAccess access) throws Refused {
        for (String p : paths) {
            List<String> names = new ArrayList<>();
            for (String n : ServedTree.normalise(p)) {
                if (n.matches(".*[*?\\[\\]].*")) {
                    break;
                }
                names.add(n);
            }
            try {
                access.run(() -> {
                    tree.locate(names, true).close();
                    return null;
                });
            } catch (java.nio.file.AccessDeniedException | java.nio.file.FileSystemLoopException e) {
                throw new Refused(p + ": " + (e.getReason() != null ? e.getReason() : "too many levels of symbolic links"));
            } catch (java.io.IOException e) {
                // missing or not a directory: rsync says so in its own words
            }
        }
    }

    private static String areaList(ServedTree tree) {
        return String.join(" and ", tree.areas().stream().map(a -> "/" + a.name()).toList());
    }
}
