package dev.kiln.agent.volume;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.Optional;

/**
 * {@link ProcessTable} over {@code /proc}: a process holds a mount when {@code cwd}, {@code root},
 * {@code exe} or an entry of {@code fd/} leads to a file on it (by device number or by path), or
 * a line of {@code maps} names its device or a path under it.
 */
public final class ProcProcessTable implements ProcessTable {

    private final Path proc;

    public ProcProcessTable(Path proc) {
        this.proc = proc;
    }

    public ProcProcessTable() {
        this(Path.of("/proc"));
    }

    @Override
    public List<Holder> holders(String device, Path mountPoint) {
        long dev = DeviceNumbers.parse(device);
        String[] mm = device.split(":");
        long major = Long.parseLong(mm[0]);
        long minor = Long.parseLong(mm[1]);
        List<Holder> holders = new ArrayList<>();
        try (DirectoryStream<Path> pids = Files.newDirectoryStream(proc, p -> p.getFileName().toString().matches("\\d+"))) {
            for (Path p : pids) {
                long pid = Long.parseLong(p.getFileName().toString());
                String how = holds(p, dev, major, minor, mountPoint);
                if (how != null) {
                    holders.add(new Holder(pid, command(p), how, started(pid)));
                }
            }
        } catch (IOException e) {
            // /proc is always there on Linux; without it nobody can be found
        }
        holders.sort((a, b) -> Long.compare(a.pid(), b.pid()));
        return holders;
    }

    private String holds(Path p, long dev, long major, long minor, Path mountPoint) {
        for (String link : List.of("cwd", "root", "exe")) {
            if (on(p.resolve(link), dev, mountPoint)) {
                return switch (link) {
                    case "cwd" -> "working directory";
                    case "root" -> "root directory";
                    default -> "executable";
                };
            }
        }
        try (DirectoryStream<Path> fds = Files.newDirectoryStream(p.resolve("fd"))) {
            for (Path fd : fds) {
                if (on(fd, dev, mountPoint)) {
                    return "open file " + target(fd).orElse("fd " + fd.getFileName());
                }
            }
        } catch (IOException | RuntimeException e) {
            // the process ended, or it is not ours to look at
        }
        try {
            for (String line : Files.readAllLines(p.resolve("maps"), StandardCharsets.UTF_8)) {
                String[] f = line.trim().split("\\s+", 6);
                if (f.length < 5) {
                    continue;
                }
                String[] d = f[3].split(":");
                boolean sameDevice = d.length == 2 && Long.parseLong(d[0], 16) == major && Long.parseLong(d[1], 16) == minor
                        && !f[4].equals("0");
                boolean underPath = f.length == 6 && under(f[5].replace(" (deleted)", ""), mountPoint);
                if (sameDevice || underPath) {
                    return "memory mapping" + (f.length == 6 ? " of " + f[5] : "");
                }
            }
        } catch (IOException | RuntimeException e) {
            // the process ended
        }
        return null;
    }

    private static boolean on(Path link, long dev, Path mountPoint) {
        Optional<String> target = target(link);
        if (target.isPresent() && under(target.get().replace(" (deleted)", ""), mountPoint)) {
            return true;
        }
        try {
            return ((Long) Files.getAttribute(link, "unix:dev")) == dev;
        } catch (IOException | RuntimeException e) {
            return false;
        }
    }

    private static Optional<String> target(Path link) {
        try {
            return Optional.of(Files.readSymbolicLink(link).toString());
        } catch (IOException | RuntimeException e) {
            return Optional.empty();
        }
    }

    private static boolean under(String path, Path mountPoint) {
        if (!path.startsWith("/")) {
            return false;
        }
        try {
            return Path.of(path).startsWith(mountPoint);
        } catch (RuntimeException e) {
            return false;
        }
    }

    private String command(Path p) {
        try {
            byte[] raw = Files.readAllBytes(p.resolve("cmdline"));
            String cmd = new String(raw, StandardCharsets.UTF_8).replace('\0', ' ').strip();
            if (!cmd.isEmpty()) {
                return cmd.length() > 100 ? cmd.substring(0, 97) + "..." : cmd;
            }
            return "[" + Files.readString(p.resolve("comm"), StandardCharsets.UTF_8).strip() + "]";
        } catch (IOException | RuntimeException e) {
            return "?";
        }
    }

    private static Instant started(long pid) {
        return ProcessHandle.of(pid).flatMap(h -> h.info().startInstant()).orElse(null);
    }

    @Override
    public boolean signal(Holder holder, boolean kill) {
        Optional<ProcessHandle> h = same(holder);
        if (h.isEmpty()) {
            return false;
        }
        return kill ? h.get().destroyForcibly() : h.get().destroy();
    }

    @Override
    public boolean alive(Holder holder) {
        return same(holder).map(ProcessHandle::isAlive).orElse(false);
    }

    private static Optional<ProcessHandle> same(Holder holder) {
        return ProcessHandle.of(holder.pid()).filter(ProcessHandle::isAlive)
                .filter(h -> holder.started() == null || Objects.equals(h.info().startInstant().orElse(null), holder.started()));
    }
}
