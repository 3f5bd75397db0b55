package dev.kiln.agent.serve;

import java.io.ByteArrayOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.AccessDeniedException;
import java.nio.file.DirectoryStream;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.FileSystem;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.BasicFileAttributes;
import java.nio.file.attribute.FileTime;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * The legacy scp protocol ({@code scp -O}, and what {@code scp -f} / {@code scp -t} speak), on the
 * user's tree: downloads from anywhere the user can read, uploads only where the tree is writable
 * (the owner's {@code /sources}); everything else is refused with "Permission denied", the same
 * rules as SFTP because both go through {@link TreeFileSystemProvider}.
 *
 * <p>Written here rather than taken from sshd-scp because the package registry this project builds
 * from does not serve sshd-scp at the MINA SSHD version every other module uses.
 */
final class ScpCommand extends SessionCommand {

    private final List<String> args;
    private final FileSystem fs;
    private boolean recursive;
    private boolean times;
    private boolean targetIsDir;
    private int errors;

    ScpCommand(List<String> args, FileSystem fs) {
        this.args = args;
        this.fs = fs;
    }

    /** Refused command line. */
    static final class Usage extends Exception {
        Usage(String m) {
            super(m);
        }
    }

    /** Checks the options; returns "-f" or "-t". */
    static String mode(List<String> args) throws Usage {
        String mode = null;
        boolean options = true;
        int paths = 0;
        for (String a : args.subList(1, args.size())) {
            if (options && a.equals("--")) {
                options = false;
            } else if (options && a.startsWith("-") && a.length() > 1) {
                for (char c : a.substring(1).toCharArray()) {
                    switch (c) {
                        case 'f', 't' -> {
                            if (mode != null) {
                                throw new Usage("scp: only one of -f and -t");
                            }
                            mode = "-" + c;
                        }
                        case 'r', 'p', 'd', 'v', 'q' -> {
                        }
                        default -> throw new Usage("scp: option -" + c + " is not supported here");
                    }
                }
            } else {
                paths++;
            }
        }
        if (mode == null) {
            throw new Usage("scp: only scp's server side (-f or -t) runs here; use scp from your machine");
        }
        if (paths == 0) {
            throw new Usage("scp: no path given");
        }
        return mode;
    }

    @Override
    protected int run() throws IOException {
        List<String> paths = new ArrayList<>();
        boolean source = false;
        boolean options = true;
        for (String a : args.subList(1, args.size())) {
            if (options && a.equals("--")) {
                options = false;
            } else if (options && a.startsWith("-") && a.length() > 1) {
                for (char c : a.substring(1).toCharArray()) {
                    switch (c) {
                        case 'f' -> source = true;
                        case 'r' -> recursive = true;
                        case 'p' -> times = true;
                        case 'd' -> targetIsDir = true;
                        default -> {
                        }
                    }
                }
            } else {
                paths.add(a);
            }
        }
        LOG.info("ssh: {} runs scp {} {}", user(), source ? "-f" : "-t", paths);
        if (source) {
            readAck(true);
            for (String p : paths) {
                send(path(p), p);
            }
        } else {
            if (paths.size() != 1) {
                fatal("scp: one target expected");
                return 1;
            }
            receive(path(paths.get(0)), paths.get(0));
        }
        return errors == 0 ? 0 : 1;
    }

    private Path path(String p) {
        return fs.getPath(p.startsWith("/") ? p : "/" + p).normalize();
    }

    // ------------------------------------------------------------------ source (download)

    private void send(Path p, String shown) throws IOException {
        BasicFileAttributes attrs;
        try {
            attrs = Files.readAttributes(p, BasicFileAttributes.class);
        } catch (IOException e) {
            error(shown, e);
            return;
        }
        if (attrs.isDirectory()) {
            if (!recursive) {
                error(shown + ": not a regular file");
                return;
            }
            sendDirectory(p, shown, attrs);
        } else if (attrs.isRegularFile()) {
            sendFile(p, shown, attrs);
        } else {
            error(shown + ": not a regular file");
        }
    }

    private void sendTimes(BasicFileAttributes attrs) throws IOException {
        if (times) {
            line("T" + attrs.lastModifiedTime().to(TimeUnit.SECONDS) + " 0 " + attrs.lastAccessTime().to(TimeUnit.SECONDS) + " 0");
            readAck(false);
        }
    }

    private void sendFile(Path p, String shown, BasicFileAttributes attrs) throws IOException {
        InputStream data;
        try {
            data = Files.newInputStream(p);
        } catch (IOException e) {
            error(shown, e);
            return;
        }
        try (data) {
            sendTimes(attrs);
            line("C" + mode(p, "0644") + " " + attrs.size() + " " + p.getFileName());
            if (!readAck(false)) {
                return;
            }
            long left = attrs.size();
            byte[] buf = new byte[65536];
            boolean failed = false;
            while (left > 0) {
                int n;
                try {
                    n = data.read(buf, 0, (int) Math.min(buf.length, left));
                } catch (IOException e) {
                    n = -1;
                }
                if (n < 0) {
                    // The file shrank or broke: pad, then report, as OpenSSH's scp does.
                    failed = true;
                    java.util.Arrays.fill(buf, (byte) 0);
                    n = (int) Math.min(buf.length, left);
                }
                out.write(buf, 0, n);
                left -= n;
            }
            if (failed) {
                error(shown + ": read error");
            } else {
                out.write(0);
                out.flush();
            }
            readAck(false);
        }
    }

    private void sendDirectory(Path dir, String shown, BasicFileAttributes attrs) throws IOException {
        List<Path> children = new ArrayList<>();
        try (DirectoryStream<Path> ds = Files.newDirectoryStream(dir)) {
            ds.forEach(children::add);
        } catch (IOException e) {
            error(shown, e);
            return;
        }
        children.sort(null);
        sendTimes(attrs);
        String name = dir.getFileName() == null ? "/" : dir.getFileName().toString();
        line("D" + mode(dir, "0755") + " 0 " + name);
        if (!readAck(false)) {
            return;
        }
        for (Path c : children) {
            send(c, shown + "/" + c.getFileName());
        }
        line("E");
        readAck(false);
    }

    private static String mode(Path p, String fallback) {
        try {
            Object m = Files.getAttribute(p, "unix:mode");
            return String.format("%04o", ((Integer) m) & 07777);
        } catch (IOException | RuntimeException e) {
            return fallback;
        }
    }

    // ------------------------------------------------------------------ sink (upload)

    private void receive(Path target, String shown) throws IOException {
        boolean isDir = Files.isDirectory(target);
        if (targetIsDir && !isDir) {
            fatal("scp: " + shown + ": Not a directory");
            return;
        }
        // Refuse at once when nothing here could be written.
        try {
            ((TreeFileSystemProvider) fs.provider()).changing(target, true).close();
        } catch (IOException e) {
            fatal("scp: " + shown + ": " + (e instanceof AccessDeniedException ? "Permission denied"
                    : e instanceof NoSuchFileException ? "No such file or directory" : "cannot write here"));
            return;
        }
        ack();
        List<Path> dirs = new ArrayList<>();
        Path current = isDir ? target : null;
        long[] pendingTimes = null;
        while (true) {
            String cmd = readLine();
            if (cmd == null) {
                return;
            }
            if (cmd.isEmpty()) {
                continue;
            }
            char c = cmd.charAt(0);
            switch (c) {
                case 'T' -> {
                    String[] f = cmd.substring(1).split(" ");
                    pendingTimes = new long[]{Long.parseLong(f[0]), Long.parseLong(f[2])};
                    ack();
                }
                case 'C', 'D' -> {
                    String[] f = cmd.substring(1).split(" ", 3);
                    if (f.length != 3 || f[2].contains("/") || f[2].equals("..") || f[2].equals(".") || f[2].isEmpty()) {
                        fatal("scp: protocol error: bad file name");
                        return;
                    }
                    int mode = Integer.parseInt(f[0], 8) & 0777;
                    long size = Long.parseLong(f[1]);
                    Path dest = current != null ? current.resolve(f[2]) : target;
                    String destShown = ServedTree.virtual(ServedTree.normalise(dest.toString()));
                    if (c == 'D') {
                        if (!recursive) {
                            fatal("scp: received directory without -r");
                            return;
                        }
                        try {
                            if (!Files.isDirectory(dest)) {
                                Files.createDirectory(dest);
                            }
                        } catch (IOException e) {
                            error(destShown, e);
                            return;
                        }
                        dirs.add(current);
                        current = dest;
                        applyTimes(dest, pendingTimes);
                        pendingTimes = null;
                        ack();
                    } else {
                        receiveFile(dest, destShown, size, mode, pendingTimes);
                        pendingTimes = null;
                    }
                }
                case 'E' -> {
                    if (dirs.isEmpty()) {
                        fatal("scp: protocol error: unexpected E");
                        return;
                    }
                    current = dirs.remove(dirs.size() - 1);
                    ack();
                }
                case 1, 2 -> {
                    errors++;
                    if (c == 2) {
                        return;
                    }
                }
                default -> {
                    fatal("scp: protocol error: unexpected '" + (int) c + "'");
                    return;
                }
            }
        }
    }

    private void receiveFile(Path dest, String shown, long size, int mode, long[] t) throws IOException {
        OutputStream file;
        try {
            file = Files.newOutputStream(dest, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                    StandardOpenOption.TRUNCATE_EXISTING);
        } catch (IOException e) {
            // Tell the client before it sends the data: it then skips this file.
            error(shown, e);
            return;
        }
        ack();
        boolean failed = false;
        try (file) {
            byte[] buf = new byte[65536];
            long left = size;
            while (left > 0) {
                int n = in.read(buf, 0, (int) Math.min(buf.length, left));
                if (n < 0) {
                    throw new EOFException("client closed during " + shown);
                }
                if (!failed) {
                    try {
                        file.write(buf, 0, n);
                    } catch (IOException e) {
                        failed = true;
                    }
                }
                left -= n;
            }
        }
        readAck(false);
        if (failed) {
            error(shown + ": write error");
            return;
        }
        try {
            Files.setAttribute(dest, "posix:permissions", java.nio.file.attribute.PosixFilePermissions.fromString(perms(mode)));
        } catch (IOException | RuntimeException ignored) {
            // permissions are best effort, as scp's own
        }
        applyTimes(dest, t);
        ack();
    }

    private static String perms(int mode) {
        String s = "rwxrwxrwx";
        StringBuilder b = new StringBuilder();
        for (int i = 0; i < 9; i++) {
            b.append((mode & (1 << (8 - i))) != 0 ? s.charAt(i) : '-');
        }
        return b.toString();
    }

    private void applyTimes(Path p, long[] t) {
        if (t == null || !times) {
            return;
        }
        try {
            Files.setLastModifiedTime(p, FileTime.from(t[0], TimeUnit.SECONDS));
        } catch (IOException | RuntimeException ignored) {
            // best effort
        }
    }

    // ------------------------------------------------------------------ protocol

    private void line(String s) throws IOException {
        out.write((s + "\n").getBytes(StandardCharsets.UTF_8));
        out.flush();
    }

    private void ack() throws IOException {
        out.write(0);
        out.flush();
    }

    private void error(String shown, IOException e) throws IOException {
        String why;
        if (e instanceof AccessDeniedException) {
            why = "Permission denied";
        } else if (e instanceof NoSuchFileException) {
            why = "No such file or directory";
        } else if (e instanceof FileAlreadyExistsException) {
            why = "File exists";
        } else if (e instanceof FileSystemException fse && fse.getReason() != null) {
            why = fse.getReason();
        } else {
            why = "Input/output error";
        }
        error(shown + ": " + why);
    }

    /** A non-fatal error: the client prints it and goes on. */
    private void error(String message) throws IOException {
        errors++;
        out.write(1);
        line("scp: " + stripPrefix(message));
    }

    private void fatal(String message) throws IOException {
        errors++;
        out.write(2);
        line(message);
    }

    private static String stripPrefix(String m) {
        return m.startsWith("scp: ") ? m.substring(5) : m;
    }

    /** Reads the client's answer: true for OK; an error is counted (and fatal ones end the transfer). */
    private boolean readAck(boolean first) throws IOException {
        int b = in.read();
        if (b < 0) {
            throw new EOFException("client closed");
        }
        if (b == 0) {
            return true;
        }
        String msg = readLine();
        errors++;
        if (b == 2) {
            throw new EOFException("client reported a fatal error: " + msg);
        }
        return false;
    }

    private String readLine() throws IOException {
        ByteArrayOutputStream b = new ByteArrayOutputStream();
        while (true) {
            int c = in.read();
            if (c < 0) {
                return b.size() == 0 ? null : b.toString(StandardCharsets.UTF_8);
            }
            if (c == '\n') {
                return b.toString(StandardCharsets.UTF_8);
            }
            if (b.size() > 65536) {
                throw new IOException("scp: protocol line too long");
            }
            b.write(c);
        }
    }
}
