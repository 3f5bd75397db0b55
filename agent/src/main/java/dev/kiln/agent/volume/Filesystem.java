package dev.kiln.agent.volume;

import java.util.Locale;

/** The filesystems Kiln formats and mounts. */
public enum Filesystem {
    /** The default: ext4, formatted with {@code -m 0} (no blocks reserved for root). */
    EXT4("ext4", 16),
    /** XFS, on request. */
    XFS("xfs", 12);

    private final String type;
    private final int maxLabel;

    Filesystem(String type, int maxLabel) {
        this.type = type;
        this.maxLabel = maxLabel;
    }

    /** The type name as mount and blkid spell it. */
    public String type() {
        return type;
    }

    /** The longest label the filesystem allows. */
    public int maxLabelLength() {
        return maxLabel;
    }

    /**
     * Parses "ext4" or "xfs"; empty means ext4.
     *
     * @throws IllegalArgumentException naming what is allowed
     */
    public static Filesystem parse(String value) {
        String v = value == null ? "" : value.strip().toLowerCase(Locale.ROOT);
        if (v.isEmpty()) {
            return EXT4;
        }
        for (Filesystem f : values()) {
            if (f.type.equals(v)) {
                return f;
            }
        }
        throw new IllegalArgumentException("filesystem must be 'ext4' or 'xfs', not '" + value + "'");
    }

    @Override
    public String toString() {
        return type;
    }
}
