package dev.kiln.controller.cli;

import com.google.protobuf.MessageOrBuilder;
import dev.kiln.proto.agent.v1.FormatDecision;
import dev.kiln.proto.agent.v1.Volume;

import java.io.PrintStream;
import java.util.List;
import java.util.Locale;

/** How volumes are printed by {@code kiln volumes} and {@code kiln mount}. */
final class VolumeTable {

    private VolumeTable() {
    }

    static void print(PrintStream out, OutputFormat format, List<Volume> volumes) {
        Table t = format == OutputFormat.wide
                ? new Table("DEVICE", "VOLUME", "SIZE", "FS", "LABEL", "MOUNT", "STATE", "OPTIONS", "WHY")
                : new Table("DEVICE", "VOLUME", "SIZE", "FS", "MOUNT", "STATE");
        for (Volume v : volumes) {
            String size = v.getSizeBytes() == 0 ? "" : size(v.getSizeBytes());
            if (format == OutputFormat.wide) {
                t.row(v.getDevice(), v.getVolumeId(), size, v.getFilesystem(), v.getLabel(), v.getMountPoint(), state(v),
                        String.join(",", v.getMountOptionsList()), v.getDecisionReason());
            } else {
                t.row(v.getDevice(), v.getVolumeId(), size, v.getFilesystem(), v.getMountPoint(), state(v));
            }
        }
        t.print(out);
    }

    /** frozen, mounted, mounted-ro, or the format decision: blank, has-data, unknown. */
    static String state(Volume v) {
        if (v.getFrozen()) {
            return "frozen";
        }
        if (!v.getMountPoint().isEmpty()) {
            return v.getMountOptionsList().contains("ro") ? "mounted-ro" : "mounted";
        }
        if (v.getFormatDecision() == FormatDecision.FORMAT_DECISION_UNSPECIFIED) {
            return "";
        }
        return v.getFormatDecision().name().replace("FORMAT_DECISION_", "").toLowerCase(Locale.ROOT).replace('_', '-');
    }

    /** 64M, 1.5G, 2T: binary units, one decimal below 10. */
    static String size(long bytes) {
        String[] units = {"B", "K", "M", "G", "T", "P"};
        double v = bytes;
        int u = 0;
        while (v >= 1024 && u < units.length - 1) {
            v /= 1024;
            u++;
        }
        return (v < 10 && u > 0 && v != Math.floor(v) ? String.format(Locale.ROOT, "%.1f", v) : Long.toString(Math.round(v)))
                + units[u];
    }

    static void json(PrintStream out, MessageOrBuilder message) {
        Json.print(out, message);
    }
}
