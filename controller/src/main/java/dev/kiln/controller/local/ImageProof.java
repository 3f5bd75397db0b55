package dev.kiln.controller.local;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;

/**
 * Proves from their contents that an ext4 image holds nothing its snapshot copy lacks, for an
 * image whose {@link VolumeStamp} moved although no file changed: mounting ext4 (and the agent's
 * {@code fsck.ext4 -a} before it, even for a read-only mount) writes its superblock, and a mount
 * writes its journal; the kernel's lazy inode-table initialisation, which may still run when a
 * snapshot is taken, marks block groups ITABLE_ZEROED in the group descriptors. The proof holds
 * only when both filesystems are clean (no journal left to replay), have the same size, block size
 * and journal, and differ in no block but the superblock's and the journal's, and the primary group
 * descriptors' only when {@code dumpe2fs} reads every group the same apart from that flag and the
 * checksums: then every file, directory and allocation is the snapshot's. Anything else,
 * including a tool that fails, proves nothing.
 */
final class ImageProof {

    /** The most image bytes one proof reads; a larger image is kept rather than read for minutes. */
    static final long BUDGET = 64L << 30;
    private static final int CHUNK = 8 << 20;
    private static final int SUPERBLOCK_OFFSET = 1024;
    private static final int SUPERBLOCK_SIZE = 1024;

    private ImageProof() {
    }

    /**
     * The first of {@code copies} (snapshot id to its volume.img) that holds all of {@code image}.
     *
     * @return its id, or empty when none provably does
     */
    static Optional<String> heldIn(Path image, Map<String, Path> copies) {
        Ext4 mine = Ext4.of(image);
        if (mine == null) {
            return Optional.empty();
        }
        for (Map.Entry<String, Path> c : copies.entrySet()) {
            Ext4 theirs = Ext4.of(c.getValue());
            if (theirs != null && mine.sameLayout(theirs)
                    && differsOnlyInMountWrites(image, c.getValue(), mine, mine.groups().equals(theirs.groups()))) {
                return Optional.of(c.getKey());
            }
        }
        return Optional.empty();
    }

    /**
     * What the proof needs of a clean ext4 image, or null when it is not one: its header, the
     * primary group descriptors' blocks (-1 when unknown) and every group as {@code dumpe2fs}
     * reads it, without checksums and the ITABLE_ZEROED flag.
     */
    record Ext4(long size, int blockSize, long[] journalBlocks, long descriptorsFirst, long descriptorsLast, String groups) {

        static Ext4 of(Path image) {
            try {
                if (!Files.isRegularFile(image, LinkOption.NOFOLLOW_LINKS)) {
                    return null;
                }
                String dump = LocalTools.stdout("dumpe2fs", image.toString());
                Map<String, String> header = header(dump);
                String features = header.getOrDefault("Filesystem features", "");
                // A journal that still needs replaying, or one on another device, is content this cannot compare.
                if (!"clean".equals(header.get("Filesystem state")) || features.contains("needs_recovery")
                        || header.containsKey("Journal device")) {
                    return null;
                }
                int blockSize = Integer.parseInt(header.getOrDefault("Block size", "0"));
                if (blockSize < 1024 || Integer.bitCount(blockSize) != 1) {
                    return null;
                }
                long[] journal = new long[0];
                if (features.contains("has_journal")) {
                    // Journal start 0: the journal holds nothing to replay.
                    if (!"8".equals(header.get("Journal inode")) || !"0".equals(header.get("Journal start"))) {
                        return null;
                    }
                    journal = blocks(LocalTools.stdout("debugfs", "-R", "blocks <8>", image.toString()));
                    if (journal.length == 0) {
                        return null;
                    }
                }
                int groupsAt = dump.indexOf("\nGroup 0:");
                String groups = groupsAt < 0 ? "" : normalisedGroups(dump.substring(groupsAt + 1));
                long first = -1;
                long last = -1;
                Matcher m = PRIMARY_DESCRIPTORS.matcher(groups);
                // With meta_bg the descriptors lie elsewhere, one block per group of groups: not allowed to differ.
                if (!features.contains("meta_bg") && m.find()) {
                    first = Long.parseLong(m.group(1));
                    last = Long.parseLong(m.group(2));
                }
                return new Ext4(Files.size(image), blockSize, journal, first, last, groups);
            } catch (IOException | NumberFormatException e) {
                return null;
            }
        }

        boolean sameLayout(Ext4 o) {
            return size == o.size && blockSize == o.blockSize && Arrays.equals(journalBlocks, o.journalBlocks)
                    && descriptorsFirst == o.descriptorsFirst && descriptorsLast == o.descriptorsLast;
        }

        boolean mayDiffer(long block, boolean descriptors) {
            long first = SUPERBLOCK_OFFSET / blockSize;
            long last = (SUPERBLOCK_OFFSET + SUPERBLOCK_SIZE - 1) / blockSize;
            return (block >= first && block <= last) || Arrays.binarySearch(journalBlocks, block) >= 0
                    || (descriptors && descriptorsFirst >= 0 && block >= descriptorsFirst && block <= descriptorsLast);
        }
    }

    private static final Pattern PRIMARY_DESCRIPTORS = Pattern.compile("^Primary superblock at \\d+, Group descriptors at (\\d+)-(\\d+)$",
            Pattern.MULTILINE);
    private static final Pattern CHECKSUM = Pattern.compile(",? csum 0x[0-9a-f]+");
    private static final Pattern FLAGS = Pattern.compile(" \\[([A-Z_, ]*)\\]$", Pattern.MULTILINE);

    /** {@code dumpe2fs}'s groups, each line stripped, without checksums and the ITABLE_ZEROED flag. */
    static String normalisedGroups(String groups) {
        StringBuilder out = new StringBuilder();
        for (String line : groups.split("\n")) {
            String l = CHECKSUM.matcher(line.strip()).replaceAll("");
            Matcher f = FLAGS.matcher(l);
            if (f.find()) {
                String kept = Arrays.stream(f.group(1).split(",\\s*")).filter(x -> !x.isBlank() && !x.equals("ITABLE_ZEROED"))
                        .sorted().collect(Collectors.joining(", "));
                l = l.substring(0, f.start()) + (kept.isEmpty() ? "" : " [" + kept + "]");
            }
            out.append(l).append('\n');
        }
        return out.toString();
    }

    /**
     * Compares the two images chunk by chunk; any differing block other than the superblock's or
     * the journal's, or the primary group descriptors' when {@code descriptors}, fails.
     */
    static boolean differsOnlyInMountWrites(Path a, Path b, Ext4 layout, boolean descriptors) {
        if (layout.size() > BUDGET || CHUNK % layout.blockSize() != 0) {
            return false;
        }
        try (FileChannel ca = FileChannel.open(a, StandardOpenOption.READ, LinkOption.NOFOLLOW_LINKS);
             FileChannel cb = FileChannel.open(b, StandardOpenOption.READ, LinkOption.NOFOLLOW_LINKS)) {
            if (ca.size() != layout.size() || cb.size() != layout.size()) {
                return false;
            }
            ByteBuffer ba = ByteBuffer.allocate(CHUNK);
            ByteBuffer bb = ByteBuffer.allocate(CHUNK);
            for (long at = 0; at < layout.size(); at += CHUNK) {
                int n = (int) Math.min(CHUNK, layout.size() - at);
                if (!readFully(ca, ba, at, n) || !readFully(cb, bb, at, n)) {
                    return false;
                }
                int from = 0;
                while (from < n) {
                    int i = Arrays.mismatch(ba.array(), from, n, bb.array(), from, n);
                    if (i < 0) {
                        break;
                    }
                    int offset = from + i;
                    long block = (at + offset) / layout.blockSize();
                    if (!layout.mayDiffer(block, descriptors)) {
                        return false;
                    }
                    from = (int) ((block + 1) * layout.blockSize() - at);
                }
            }
            return true;
        } catch (IOException e) {
            return false;
        }
    }

    private static boolean readFully(FileChannel c, ByteBuffer buf, long at, int n) throws IOException {
        buf.clear().limit(n);
        while (buf.hasRemaining()) {
            if (c.read(buf, at + buf.position()) < 0) {
                return false;
            }
        }
        return true;
    }

    /** "Key:   value" lines of {@code dumpe2fs}'s header (the first of each key). */
    static Map<String, String> header(String text) {
        Map<String, String> out = new LinkedHashMap<>();
        for (String line : text.split("\n")) {
            int colon = line.indexOf(':');
            if (colon > 0) {
                out.putIfAbsent(line.substring(0, colon).strip(), line.substring(colon + 1).strip());
            }
        }
        return out;
    }

    /** The block numbers {@code debugfs -R 'blocks <8>'} prints, sorted; empty when it printed anything else. */
    static long[] blocks(String text) {
        String s = text.strip();
        if (s.isEmpty() || !s.matches("[0-9 \n]+")) {
            return new long[0];
        }
        long[] out = Arrays.stream(s.split("\\s+")).mapToLong(Long::parseLong).toArray();
        Arrays.sort(out);
        return out;
    }
}
