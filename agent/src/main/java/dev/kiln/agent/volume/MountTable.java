package dev.kiln.agent.volume;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;

/**
 * The kernel's view of what is mounted, from {@code /proc/self/mountinfo}: the only source Kiln
 * trusts to say whether a mount happened or went away.
 */
public final class MountTable {

    /**
     * One line of mountinfo.
     *
     * @param number       the device number of the mounted filesystem ("major:minor")
     * @param mountPoint   where it is mounted
     * @param options      per-mount options (rw/ro, nodev, nosuid, noexec, noatime, ...)
     * @param type         the filesystem type
     * @param source       the mount source (a device path, "overlay", ...)
     * @param superOptions per-superblock options (for overlay: lowerdir=, upperdir=, workdir=)
     */
    public record Entry(String number, Path mountPoint, Set<String> options, String type, String source,
                        Map<String, String> superOptions) {

        public boolean readOnly() {
            return options.contains("ro");
        }
    }

    private final Path file;

    /** @param file normally {@code /proc/self/mountinfo} */
    public MountTable(Path file) {
        this.file = file;
    }

    public MountTable() {
        this(Path.of("/proc/self/mountinfo"));
    }

    /** Every mount, in mount order (a later entry at the same point is on top). */
    public List<Entry> read() throws IOException {
        return parse(Files.readString(file, StandardCharsets.UTF_8));
    }

    /** The topmost mount at exactly this path, if any. */
    public Optional<Entry> at(Path mountPoint) throws IOException {
        Entry top = null;
        for (Entry e : read()) {
            if (e.mountPoint().equals(mountPoint)) {
                top = e;
            }
        }
        return Optional.ofNullable(top);
    }

    static List<Entry> parse(String text) {
        List<Entry> entries = new ArrayList<>();
        for (String line : text.split("\n")) {
            if (line.isBlank()) {
                continue;
            }
            String[] f = line.split(" ");
            int dash = -1;
            for (int i = 6; i < f.length; i++) {
                if (f[i].equals("-")) {
                    dash = i;
                    break;
                }
            }
            if (dash < 0 || dash + 1 >= f.length) {
                continue;
            }
            Set<String> options = new java.util.LinkedHashSet<>(List.of(f[5].split(",")));
            Map<String, String> superOptions = new LinkedHashMap<>();
            if (dash + 3 < f.length) {
                for (String o : unescape(f[dash + 3]).split(",")) {
                    int eq = o.indexOf('=');
                    superOptions.put(eq < 0 ? o : o.substring(0, eq), eq < 0 ? "" : o.substring(eq + 1));
                }
            }
            entries.add(new Entry(f[2], Path.of(unescape(f[4])), Set.copyOf(options), unescape(f[dash + 1]),
                    dash + 2 < f.length ? unescape(f[dash + 2]) : "", superOptions));
        }
        return entries;
    }

    /** mountinfo escapes space, tab, newline and backslash as \ooo octal. */
    static String unescape(String s) {
        if (s.indexOf('\\') < 0) {
            return s;
        }
        StringBuilder b = new StringBuilder();
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c == '\\' && i + 3 < s.length() && s.substring(i + 1, i + 4).matches("[0-7]{3}")) {
                b.append((char) Integer.parseInt(s.substring(i + 1, i + 4), 8));
                i += 3;
            } else {
                b.append(c);
            }
        }
        return b.toString();
    }
}
