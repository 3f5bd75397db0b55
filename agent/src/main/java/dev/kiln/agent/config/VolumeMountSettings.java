package dev.kiln.agent.config;

import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.function.Consumer;

/**
 * One boot-time mount from {@code kiln.volumes.mounts} (a YAML list in agent.yml or user data):
 * a volume (id and/or device) at a mount point, or an overlay of two directories.
 *
 * <pre>
 * kiln:
 *   volumes:
 *     mounts:
 *       - volume-id: vol-0123456789abcdef0
 *         device: /dev/sdf            # a hint only
 *         mount-point: /mnt/sources
 *         options: ro,noatime,noexec
 *       - volume-id: vol-0fedcba9876543210
 *         mount-point: /mnt/builds
 *         format: true
 *         created-empty: true         # written by kiln launch only
 *       - mount-point: /srv/vibes
 *         lower-dir: /mnt/sources/vibes
 *         upper-dir: /mnt/builds/vibes
 * </pre>
 *
 * @param volumeId   the EBS volume id, or empty
 * @param device     a device path under /dev (a hint when volumeId is set), or empty
 * @param mountPoint where to mount
 * @param filesystem "ext4" (default) or "xfs"
 * @param options    mount options from {@link #OPTIONS}
 * @param format     whether a provably blank device may be formatted
 * @param label      the label when formatting, or empty
 * @param lowerDir   overlay: the read-only lower layer, or empty
 * @param upperDir   overlay: the writable upper layer, or empty
 * @param attachWait how long to wait for the device, or null for kiln.volumes.attach-timeout
 * @param createdEmpty the controller created this EBS volume empty (no snapshot) for this launch:
 *                   proof that it is blank, for the volume id given and no other
 */
public record VolumeMountSettings(String volumeId, String device, String mountPoint, String filesystem,
                                  List<String> options, boolean format, String label, String lowerDir,
                                  String upperDir, Duration attachWait, boolean createdEmpty) {

    /** The setting that holds the list. */
    public static final String KEY = "kiln.volumes.mounts";

    /** Mount options a boot mount may ask for; nodev and nosuid are always applied. */
    public static final Set<String> OPTIONS = Set.of("ro", "rw", "noexec", "noatime", "nodev", "nosuid");

    private static final Map<String, String> ACCEPTS = new LinkedHashMap<>();
    private static final Map<String, Consumer<String>> CHECKS = new LinkedHashMap<>();

    static {
        field("volume-id", "an EBS volume id such as vol-0123456789abcdef0",
                v -> require(v.matches("vol-([0-9a-f]{8}|[0-9a-f]{17})"), "'" + v + "' is not an EBS volume id"));
        field("device", "a device path under /dev such as /dev/sdf",
                v -> require(v.startsWith("/dev/") && v.length() > 5 && !v.contains(".."), "'" + v + "' is not a path under /dev"));
        field("mount-point", "an absolute path", VolumeMountSettings::absolute);
        field("filesystem", "'ext4' or 'xfs'", v -> require(v.equals("ext4") || v.equals("xfs"), "'" + v + "' is not ext4 or xfs"));
        field("options", "mount options from ro, rw, noexec, noatime, nodev, nosuid (nodev,nosuid always apply)",
                v -> parseOptions(v));
        field("format", "true or false", v -> require(v.equals("true") || v.equals("false"), "'" + v + "' is not true or false"));
        field("label", "1-16 letters, digits, '.', '_' or '-' (12 for xfs)",
                v -> require(v.matches("[A-Za-z0-9._-]{1,16}"), "'" + v + "' is not a valid label"));
        field("lower-dir", "an absolute path (overlay: the read-only sources)", VolumeMountSettings::absolute);
        field("upper-dir", "an absolute path (overlay: the writable outputs)", VolumeMountSettings::absolute);
        field("wait", "a duration such as 30s or 2m", SettingsCatalog::parseDuration);
        field("created-empty", "true or false (kiln launch writes it for a volume it created empty)",
                v -> require(v.equals("true") || v.equals("false"), "'" + v + "' is not true or false"));
    }

    private static void field(String name, String accepts, Consumer<String> check) {
        ACCEPTS.put(name, accepts);
        CHECKS.put(name, check);
    }

    /** The fields one mount may have. */
    public static Set<String> fields() {
        return ACCEPTS.keySet();
    }

    /**
     * Problems with the whole list, each naming the indexed key (kiln.volumes.mounts[1].device).
     *
     * @param source where the list came from, e.g. the file path
     * @param value  the list as the YAML parser produced it
     */
    public static List<String> problems(String source, Object value) {
        List<String> problems = new ArrayList<>();
        if (!(value instanceof List<?> list)) {
            problems.add("setting '" + KEY + "' in " + source + " must be a list of mounts (each with mount-point and"
                    + " volume-id or device, or lower-dir and upper-dir)");
            return problems;
        }
        for (int i = 0; i < list.size(); i++) {
            String prefix = KEY + "[" + i + "]";
            if (!(list.get(i) instanceof Map<?, ?> m)) {
                problems.add("setting '" + prefix + "' in " + source + " must be a map with mount-point and volume-id or"
                        + " device (or lower-dir and upper-dir)");
                continue;
            }
            Map<String, Object> fields = new LinkedHashMap<>();
            m.forEach((k, v) -> fields.put(SettingsCatalog.normalise(String.valueOf(k)), v));
            fields.forEach((k, v) -> fieldProblem(source, prefix + "." + k, k, v).ifPresent(problems::add));
            boolean overlay = fields.containsKey("lower-dir") || fields.containsKey("upper-dir");
            if (!fields.containsKey("mount-point")) {
                problems.add("setting '" + prefix + ".mount-point' in " + source + " is missing (expected an absolute path)");
            }
            if (overlay) {
                if (!fields.containsKey("lower-dir") || !fields.containsKey("upper-dir")) {
                    problems.add("setting '" + prefix + "' in " + source + " is an overlay and needs both lower-dir and upper-dir");
                }
                for (String not : List.of("volume-id", "device", "format", "filesystem", "label", "wait", "created-empty")) {
                    if (fields.containsKey(not)) {
                        problems.add("setting '" + prefix + "." + not + "' in " + source
                                + " does not apply to an overlay (lower-dir/upper-dir)");
                    }
                }
            } else if (!fields.containsKey("volume-id") && !fields.containsKey("device")) {
                problems.add("setting '" + prefix + "' in " + source + " needs volume-id or device (or lower-dir and"
                        + " upper-dir for an overlay)");
            } else if (fields.containsKey("created-empty") && !fields.containsKey("volume-id")) {
                // The claim is about one EBS volume; a device path alone could be any disk.
                problems.add("setting '" + prefix + ".created-empty' in " + source + " needs volume-id: it vouches for"
                        + " that EBS volume only");
            }
        }
        return problems;
    }

    /** The problem with one field's value, if any (also used for flattened indexed keys). */
    public static java.util.Optional<String> fieldProblem(String source, String key, String field, Object value) {
        Consumer<String> check = CHECKS.get(field);
        if (check == null) {
            return java.util.Optional.of("unknown setting '" + key + "' in " + source + "; a mount has "
                    + String.join(", ", ACCEPTS.keySet()));
        }
        if (value instanceof Map<?, ?>) {
            return java.util.Optional.of("setting '" + key + "' in " + source + " must be a single value ("
                    + ACCEPTS.get(field) + ")");
        }
        String text = value instanceof List<?> l && field.equals("options")
                ? String.join(",", l.stream().map(String::valueOf).toList())
                : value == null ? "" : String.valueOf(value).strip();
        if (value instanceof List<?> && !field.equals("options")) {
            return java.util.Optional.of("setting '" + key + "' in " + source + " must be a single value ("
                    + ACCEPTS.get(field) + ")");
        }
        try {
            check.accept(text);
            return java.util.Optional.empty();
        } catch (IllegalArgumentException e) {
            return java.util.Optional.of("invalid value for setting '" + key + "' in " + source + ": " + e.getMessage()
                    + " (expected " + ACCEPTS.get(field) + ")");
        }
    }

    /** Reads a validated list. */
    public static List<VolumeMountSettings> parse(List<?> list) {
        List<VolumeMountSettings> out = new ArrayList<>();
        for (Object o : list) {
            Map<String, Object> f = new LinkedHashMap<>();
            ((Map<?, ?>) o).forEach((k, v) -> f.put(SettingsCatalog.normalise(String.valueOf(k)), v));
            Object opts = f.get("options");
            String optionText = opts instanceof List<?> l ? String.join(",", l.stream().map(String::valueOf).toList())
                    : opts == null ? "" : String.valueOf(opts);
            out.add(new VolumeMountSettings(text(f, "volume-id"), text(f, "device"), text(f, "mount-point"),
                    text(f, "filesystem"), parseOptions(optionText), text(f, "format").equals("true"), text(f, "label"),
                    text(f, "lower-dir"), text(f, "upper-dir"),
                    f.containsKey("wait") ? SettingsCatalog.parseDuration(text(f, "wait")) : null,
                    text(f, "created-empty").equals("true")));
        }
        return out;
    }

    /** "ro,noatime,noexec" into its options, checking each. */
    public static List<String> parseOptions(String text) {
        List<String> out = new ArrayList<>();
        for (String o : text.split(",")) {
            String t = o.strip().toLowerCase(Locale.ROOT);
            if (t.isEmpty()) {
                continue;
            }
            require(OPTIONS.contains(t), "unsupported mount option '" + t + "'");
            out.add(t);
        }
        require(!(out.contains("ro") && out.contains("rw")), "both ro and rw");
        return out;
    }

    public boolean readOnly() {
        return options.contains("ro");
    }

    public boolean noexec() {
        return options.contains("noexec");
    }

    public boolean noatime() {
        return options.contains("noatime");
    }

    private static String text(Map<String, Object> f, String k) {
        Object v = f.get(k);
        return v == null ? "" : String.valueOf(v).strip();
    }

    private static void absolute(String v) {
        require(!v.isBlank() && Path.of(v).isAbsolute(), "'" + v + "' is not an absolute path");
    }

    private static void require(boolean ok, String problem) {
        if (!ok) {
            throw new IllegalArgumentException(problem);
        }
    }
}
