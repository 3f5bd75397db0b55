package dev.kiln.controller.ssh;

import dev.kiln.controller.ExitCodes;
import dev.kiln.controller.KilnException;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Copies a tree with the real rsync over ssh, as {@code kiln pull} and {@code kiln push} do:
 * incremental (only changed files travel, by size and time), resumable ({@code --partial} keeps
 * a file cut off mid-way, and the next run sends only what is missing of it), with a progress bar
 * (bytes, rate, ETA) on a terminal; then it checks that every regular file of the source exists
 * at the destination with the same size, and fails naming those that do not.
 *
 * <p>Why the real rsync rather than MINA's SFTP client in Java: rsync already does incremental
 * comparison, delta transfer of partial files, and keeps times, permissions and links; it is what
 * users run by hand against the same server, so {@code kiln pull} exercises exactly that path.
 */
public final class RsyncTransfer {

    /** rsync's --info=progress2 line: bytes, percent, rate, time left. */
    private static final Pattern PROGRESS = Pattern.compile("^\\s*([\\d.,]+[KMGT]?)\\s+(\\d+)%\\s+(\\S+/s)\\s+(\\d+:\\d\\d:\\d\\d)");
    private static final Pattern LIST = Pattern.compile("^(\\S)\\S{9}\\s+([\\d,]+)\\s+\\S+\\s+\\S+\\s+(.*)$");

    /** What a transfer did. */
    public record Result(long files, long bytes, long seconds) {
    }

    private final SshTarget target;
    private final PrintStream err;
    private final boolean terminal;

    public RsyncTransfer(SshTarget target, PrintStream err, boolean terminal) {
        this.target = target;
        this.err = err;
        this.terminal = terminal;
    }

    /** Fails with a message saying what to install when rsync or ssh is missing. */
    public static void requireTools() {
        for (String tool : List.of("rsync", "ssh")) {
            boolean found = false;
            String path = System.getenv("PATH");
            for (String dir : (path == null ? "/usr/bin:/bin" : path).split(":")) {
                if (!dir.isEmpty() && Files.isExecutable(Path.of(dir, tool))) {
                    found = true;
                    break;
                }
            }
            if (!found) {
                throw new KilnException(ExitCodes.CONFIG, "`" + tool + "` is not installed; kiln pull and push use rsync over ssh "
                        + "(apt-get install rsync openssh-client)");
            }
        }
    }

    /**
     * Runs {@code rsync -a SRC DEST} (one side remote) and verifies the result.
     *
     * @param source      the source: a local directory with a trailing slash, or {@code user@host:/path/}
     * @param destination likewise
     * @param delete      whether to delete files at the destination that the source does not have
     * @param remoteIsSource true for pull, false for push (to know which side to list)
     */
    public Result copy(String source, String destination, boolean delete, boolean remoteIsSource) {
        List<String> cmd = new ArrayList<>(List.of("rsync", "-a", "--partial", "--info=progress2", "--stats",
                "--human-readable", "--outbuf=L", "-e", target.rsyncShell()));
        if (delete) {
            cmd.add("--delete");
        }
        cmd.add(source);
        cmd.add(destination);
        long started = System.nanoTime();
        Process p;
        try {
            ProcessBuilder pb = new ProcessBuilder(cmd).redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null")));
            pb.environment().put("LC_ALL", "C");
            p = pb.start();
        } catch (IOException e) {
            throw new KilnException(ExitCodes.CONFIG, "cannot run rsync: " + e.getMessage(), e);
        }
        ByteArrayOutputStream errBytes = new ByteArrayOutputStream();
        Thread errReader = new Thread(() -> copy(p.getErrorStream(), errBytes), "kiln-rsync-stderr");
        errReader.setDaemon(true);
        errReader.start();
        Map<String, String> stats = new LinkedHashMap<>();
        boolean drawn = false;
        try (InputStream in = p.getInputStream()) {
            StringBuilder line = new StringBuilder();
            int c;
            while ((c = in.read()) >= 0) {
                if (c == '\r' || c == '\n') {
                    drawn |= handle(line.toString(), stats);
                    line.setLength(0);
                } else {
                    line.append((char) c);
                }
            }
            drawn |= handle(line.toString(), stats);
        } catch (IOException e) {
            // rsync ended; its exit status says how
        }
        int code;
        try {
            if (!p.waitFor(10, TimeUnit.MINUTES)) {
                p.destroyForcibly();
            }
            errReader.join(5000);
            code = p.exitValue();
        } catch (InterruptedException e) {
            p.destroyForcibly();
            Thread.currentThread().interrupt();
            throw new KilnException(ExitCodes.FAILURE, "interrupted");
        }
        if (drawn) {
            // rsync's overall percentage counts files that were already up to date as never
            // transferred, so it can end below 100%: close the bar on success.
            err.println(code == 0 ? "\r[" + "#".repeat(30) + "] 100%  done" + " ".repeat(40) : "");
        }
        String rsyncErr = errBytes.toString(StandardCharsets.UTF_8).strip();
        if (code != 0) {
            if (!rsyncErr.isEmpty()) {
                err.println(rsyncErr);
            }
            throw new KilnException(code == 255 || code == 12 || code == 5 || code == 10 ? ExitCodes.UNREACHABLE : ExitCodes.FAILURE,
                    "rsync failed with exit status " + code + " (" + meaning(code) + ")"
                            + (code == 23 || code == 24 || code == 20 || code == 30 || code == 12
                            ? "; run the command again to resume where it stopped" : ""));
        }
        long files = number(stats.get("Number of regular files transferred"));
        long bytes = number(stats.get("Total transferred file size"));
        return new Result(files, bytes, TimeUnit.NANOSECONDS.toSeconds(System.nanoTime() - started));
    }

    private boolean handle(String line, Map<String, String> stats) {
        Matcher m = PROGRESS.matcher(line);
        if (m.find()) {
            if (terminal) {
                int pct = Integer.parseInt(m.group(2));
                int width = 30;
                int filled = width * pct / 100;
                err.print("\r[" + "#".repeat(filled) + ".".repeat(width - filled) + "] " + String.format(Locale.ROOT, "%3d%%", pct)
                        + "  " + m.group(1) + "  " + m.group(3) + "  ETA " + m.group(4) + "   ");
                err.flush();
                return true;
            }
            return false;
        }
        int colon = line.indexOf(": ");
        if (colon > 0) {
            stats.put(line.substring(0, colon).trim(), line.substring(colon + 2).trim());
        }
        return false;
    }

    /**
     * Checks that every regular file of the source is at the destination with the same size.
     *
     * @return the files that are missing or differ, as "path (why)"
     */
    public List<String> verify(String remote, Path local, boolean remoteIsSource) {
        Map<String, Long> remoteFiles = listRemote(remote);
        List<String> problems = new ArrayList<>();
        if (remoteIsSource) {
            remoteFiles.forEach((rel, size) -> check(local.resolve(rel), rel, size, problems));
        } else {
            Map<String, Long> localFiles = new LinkedHashMap<>();
            try (var walk = Files.walk(local)) {
                walk.filter(f -> Files.isRegularFile(f, LinkOption.NOFOLLOW_LINKS)).forEach(f -> {
                    try {
                        localFiles.put(local.relativize(f).toString(), Files.size(f));
                    } catch (IOException e) {
                        problems.add(local.relativize(f) + " (cannot read: " + e.getMessage() + ")");
                    }
                });
            } catch (IOException e) {
                throw new KilnException(ExitCodes.FAILURE, "cannot list " + local + ": " + e.getMessage(), e);
            }
            localFiles.forEach((rel, size) -> {
                Long there = remoteFiles.get(rel);
                if (there == null) {
                    problems.add(rel + " (missing on the agent)");
                } else if (there.longValue() != size) {
                    problems.add(rel + " (" + there + " bytes on the agent, " + size + " here)");
                }
            });
        }
        return problems;
    }

    private static void check(Path file, String rel, long size, List<String> problems) {
        if (!Files.isRegularFile(file, LinkOption.NOFOLLOW_LINKS)) {
            problems.add(rel + " (missing)");
            return;
        }
        try {
            long here = Files.size(file);
            if (here != size) {
                problems.add(rel + " (" + here + " bytes here, " + size + " on the agent)");
            }
        } catch (IOException e) {
            problems.add(rel + " (cannot read: " + e.getMessage() + ")");
        }
    }

    /** Regular files under a remote directory (which ends with a slash) and their sizes, from rsync --list-only. */
    private Map<String, Long> listRemote(String remote) {
        Listing listing = list(List.of("-r"), remote);
        if (listing.code() != 0) {
            throw new KilnException(ExitCodes.FAILURE, "cannot list " + remote + " to verify the transfer: " + listing.err());
        }
        Map<String, Long> files = new LinkedHashMap<>();
        listing.entries().forEach(e -> {
            if (e.type() == '-') {
                files.put(e.path(), e.size());
            }
        });
        return files;
    }

    /** One entry of an rsync listing: its type ({@code d}, {@code -}, {@code l}, ...), size and path. */
    public record Entry(char type, long size, String path) {
    }

    /**
     * An rsync listing and how it ended.
     *
     * @param missing the listed path does not exist (rsync said "No such file or directory")
     */
    public record Listing(int code, List<Entry> entries, String err, boolean missing) {
    }

    /**
     * Lists {@code remote} ({@code user@host:/path}) with {@code rsync --list-only} and the given
     * options (recursion, filters). A path that does not exist comes back as {@code missing}; ssh
     * failures throw.
     */
    public Listing list(List<String> options, String remote) {
        List<String> cmd = new ArrayList<>(List.of("rsync", "--list-only", "--no-human-readable", "-e", target.rsyncShell()));
        cmd.addAll(options);
        cmd.add(remote);
        try {
            ProcessBuilder pb = new ProcessBuilder(cmd).redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null")));
            pb.environment().put("LC_ALL", "C");
            Process p = pb.start();
            ByteArrayOutputStream errBytes = new ByteArrayOutputStream();
            Thread t = new Thread(() -> copy(p.getErrorStream(), errBytes));
            t.setDaemon(true);
            t.start();
            String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            if (!p.waitFor(5, TimeUnit.MINUTES)) {
                p.destroyForcibly();
            }
            t.join(5000);
            int code = p.exitValue();
            String err = errBytes.toString(StandardCharsets.UTF_8).strip();
            if (code == 255 || code == 12 || code == 5 || code == 10) {
                throw new KilnException(ExitCodes.UNREACHABLE, "cannot list " + remote + ": rsync failed with exit status " + code
                        + " (" + meaning(code) + ")" + (err.isEmpty() ? "" : ": " + err));
            }
            List<Entry> entries = new ArrayList<>();
            for (String line : out.split("\n")) {
                Matcher m = LIST.matcher(line);
                if (m.matches()) {
                    entries.add(new Entry(m.group(1).charAt(0), number(m.group(2)), m.group(3)));
                }
            }
            return new Listing(code, entries, err, code == 23 && err.contains("No such file or directory"));
        } catch (IOException e) {
            throw new KilnException(ExitCodes.FAILURE, "cannot run rsync: " + e.getMessage(), e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new KilnException(ExitCodes.FAILURE, "interrupted");
        }
    }

    private static long number(String s) {
        if (s == null) {
            return 0;
        }
        String digits = s.split(" ")[0].replace(",", "");
        try {
            return Long.parseLong(digits);
        } catch (NumberFormatException e) {
            // --human-readable sizes such as 1.23M
            Matcher m = Pattern.compile("([\\d.]+)([KMGT]?)").matcher(digits);
            if (!m.find()) {
                return 0;
            }
            double v = Double.parseDouble(m.group(1));
            return (long) (v * switch (m.group(2)) {
                case "K" -> 1e3;
                case "M" -> 1e6;
                case "G" -> 1e9;
                case "T" -> 1e12;
                default -> 1;
            });
        }
    }

    private static void copy(InputStream in, ByteArrayOutputStream out) {
        try {
            in.transferTo(out);
        } catch (IOException ignored) {
            // the process ended
        }
    }

    /** What an rsync exit status means (rsync's man page). */
    static String meaning(int code) {
        return switch (code) {
            case 1 -> "syntax or usage error";
            case 2 -> "protocol incompatibility";
            case 3 -> "errors selecting input/output files";
            case 5 -> "error starting client-server protocol";
            case 10 -> "error in socket I/O";
            case 11 -> "error in file I/O";
            case 12 -> "error in the rsync protocol data stream, usually the agent refused or the connection dropped";
            case 20 -> "interrupted";
            case 23 -> "partial transfer due to error";
            case 24 -> "partial transfer: some source files vanished";
            case 30 -> "timeout";
            case 255 -> "ssh failed: the SSH server could not be reached or refused the key";
            default -> "see rsync(1)";
        };
    }
}
