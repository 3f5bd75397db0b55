package dev.kiln.agent.volume;

import dev.kiln.os.OsCommand;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Decides whether a device is BLANK, HAS_DATA or UNKNOWN. BLANK needs every one of: blkid
 * ({@code -p}, low-level) finds no signature, wipefs finds none either, the device is readable,
 * and its first and last MiB are all zeros. A read error, a partition table, an encrypted
 * volume, random or unrecognised data, or any disagreement between the tools means not BLANK.
 * HAS_DATA needs blkid and wipefs to agree on exactly one filesystem and nothing else.
 *
 * <p>A device that cannot be read can look empty to blkid and wipefs (they report "nothing
 * found" on I/O errors), which is why the read is part of the decision.
 *
 * <p>BLANK is evidence, not proof: a disk whose partition table was wiped still holds its
 * partitions past the first MiB and answers BLANK. {@link BlankProver} proves a BLANK device blank
 * before anything formats it; the decision stays cheap, since every ListVolumes makes one per device.
 */
public final class FormatDecider {

    /** How much is read at each end of the device. */
    public static final int EDGE_BYTES = 1 << 20;

    private final DiskTools tools;

    public FormatDecider(DiskTools tools) {
        this.tools = tools;
    }

    /** Decides; never throws for a device's state, only answers UNKNOWN with the reason. */
    public Probe decide(Path device) {
        Map<String, String> found;
        List<String[]> signatures;
        try {
            OsCommand.Result blkid = tools.blkid(device);
            if (blkid.exitCode() == 2) {
                found = Map.of();
            } else if (blkid.ok()) {
                found = export(blkid.stdout());
            } else {
                return unknown("", "", "blkid could not probe it (" + blkid.describe() + ")");
            }
            OsCommand.Result wipefs = tools.wipefsList(device);
            if (!wipefs.ok()) {
                return unknown("", "", "wipefs could not list its signatures (" + wipefs.describe() + ")");
            }
            signatures = new ArrayList<>();
            for (String line : wipefs.stdout().split("\n")) {
                if (!line.isBlank()) {
                    signatures.add(line.strip().split(",", -1));
                }
            }
        } catch (IOException e) {
            return unknown("", "", "its signatures could not be probed: " + e.getMessage());
        }
        String type = found.getOrDefault("TYPE", "");
        String usage = found.getOrDefault("USAGE", "");
        String label = found.getOrDefault("LABEL", "");
        String ptType = found.getOrDefault("PTTYPE", "");
        Set<String> wipefsTypes = new LinkedHashSet<>();
        signatures.forEach(s -> wipefsTypes.add(s.length > 1 ? s[1] : "?"));

        if (!ptType.isEmpty() || wipefsTypes.contains("gpt") || wipefsTypes.contains("dos") || wipefsTypes.contains("PMBR")) {
            String which = !ptType.isEmpty() ? ptType : String.join("/", wipefsTypes);
            return unknown(type, label, "a " + which + " partition table");
        }
        if (type.equals("crypto_LUKS") || wipefsTypes.contains("crypto_LUKS")) {
            return unknown("crypto_LUKS", label, "a LUKS header (an encrypted volume)");
        }
        if (found.isEmpty() && signatures.isEmpty()) {
            return blankIfZeros(device);
        }
        if (found.isEmpty() || signatures.isEmpty()) {
            return unknown(type, label, "blkid and wipefs disagree (blkid: " + (found.isEmpty() ? "nothing" : describe(found))
                    + "; wipefs: " + (signatures.isEmpty() ? "nothing" : String.join(", ", wipefsTypes)) + ")");
        }
        if (!usage.equals("filesystem") || type.isEmpty()) {
            return unknown(type, label, (type.isEmpty() ? "a" : article(type) + " " + type) + " signature that is not a filesystem"
                    + (usage.isEmpty() ? "" : " (" + usage + ")"));
        }
        if (wipefsTypes.size() != 1 || !wipefsTypes.contains(type)) {
            return unknown(type, label, "more than one signature (blkid: " + type + "; wipefs: "
                    + String.join(", ", wipefsTypes) + ")");
        }
        return new Probe(FormatDecision.HAS_DATA, type, label, article(type) + " " + type + " filesystem"
                + (label.isEmpty() ? "" : " labelled '" + label + "'"));
    }

    private Probe blankIfZeros(Path device) {
        long size;
        try {
            size = tools.size(device);
        } catch (IOException e) {
            return unknown("", "", "no signature, but its size cannot be read: " + e.getMessage());
        }
        if (size <= 0) {
            return unknown("", "", "no signature, but it has no readable size (" + size + " bytes)");
        }
        int first = (int) Math.min(EDGE_BYTES, size);
        long lastOffset = Math.max(0, size - EDGE_BYTES);
        int last = (int) Math.min(EDGE_BYTES, size);
        try {
            if (!zeros(tools.read(device, 0, first))) {
                return unknown("", "", "no signature, but its first MiB is not all zeros (unrecognised or random data)");
            }
        } catch (IOException e) {
            return unknown("", "", "no signature, but it cannot be read (" + message(e) + ")");
        }
        try {
            if (!zeros(tools.read(device, lastOffset, last))) {
                return unknown("", "", "no signature, but its last MiB is not all zeros (unrecognised or random data)");
            }
        } catch (IOException e) {
            return unknown("", "", "no signature, but its last MiB cannot be read (" + message(e) + ")");
        }
        return new Probe(FormatDecision.BLANK, "", "", "no signature, and its first and last MiB are all zeros");
    }

    private static String message(IOException e) {
        String m = e.getMessage() == null ? e.toString() : e.getMessage();
        // FileChannel reports "Input/output error" as the whole message; keep it short.
        return m;
    }

    /** "an ext4", "an xfs", "a btrfs". */
    static String article(String word) {
        return !word.isEmpty() && "aeiox".indexOf(Character.toLowerCase(word.charAt(0))) >= 0 ? "an" : "a";
    }

    private static boolean zeros(byte[] b) {
        for (byte x : b) {
            if (x != 0) {
                return false;
            }
        }
        return true;
    }

    private static Probe unknown(String type, String label, String reason) {
        return new Probe(FormatDecision.UNKNOWN, type, label, reason);
    }

    private static String describe(Map<String, String> found) {
        List<String> parts = new ArrayList<>();
        found.forEach((k, v) -> {
            if (k.equals("TYPE") || k.equals("PTTYPE") || k.equals("USAGE")) {
                parts.add(k + "=" + v);
            }
        });
        return parts.isEmpty() ? "a signature" : String.join(" ", parts);
    }

    /** Parses {@code blkid -o export}: KEY=value lines. */
    static Map<String, String> export(String text) {
        Map<String, String> m = new LinkedHashMap<>();
        for (String line : text.split("\n")) {
            int eq = line.indexOf('=');
            if (eq > 0) {
                m.put(line.substring(0, eq).strip(), line.substring(eq + 1).strip());
            }
        }
        return m;
    }
}
