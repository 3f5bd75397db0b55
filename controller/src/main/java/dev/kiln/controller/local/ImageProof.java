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

/**
 * Proves from their contents that an ext4 image holds nothing its snapshot copy lacks, for an
 * image whose {@link VolumeStamp} moved although no file changed: mounting ext4 (and the agent's
 * {@code fsck.ext4 -a} before it, even for a read-only mount) writes its superblock, and a mount
 * writes its journal. The proof holds only when both filesystems are clean (no journal left to
 * replay), have the same size, block size and journal, and differ in no block but the
 * superblock's and the journal's: then every file, directory and allocation is the snapshot's.
 * Anything else, including a tool that fails, proves nothing.
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
            if (theirs != null && mine.sameLayout(theirs) && differsOnlyInSuperblockAndJournal(image, c.getValue(), mine)) {
                return Optional.of(c.getKey());
            }
        }
        return Optional.empty();
    }

    /** What the proof needs of a clean ext4 image's header, or null when it is not one. */
    record Ext4(long size, int blockSize, long[] journalBlocks) {

        static Ext4 of(Path image) {
            try {
                if (!Files.isRegularFile(image, LinkOption.NOFOLLOW_LINKS)) {
                    return null;
                }
                Map<String, String> header = header(LocalTools.stdout("dumpe2fs", "-h", image.toString()));
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
                return new Ext4(Files.size(image), blockSize, journal);
            } catch (IOException | NumberFormatException e) {
                return null;
            }
        }

        boolean sameLayout(Ext4 o) {
            return size == o.size && blockSize == o.blockSize && Arrays.equals(journalBlocks, o.journalBlocks);
        }

        boolean mayDiffer(long block) {
            long first = SUPERBLOCK_OFFSET / blockSize;
            long last = (SUPERBLOCK_OFFSET + SUPERBLOCK_SIZE - 1) / blockSize;
            return (block >= first && block <= last) || Arrays.binarySearch(journalBlocks, block) >= 0;
        }
    }

    /** Compares the two images chunk by chunk; any differing block other than the superblock's or the journal's fails. */
    static boolean differsOnlyInSuperblockAndJournal(Path a, Path b, Ext4 layout) {
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
                    if (!layout.mayDiffer(block)) {
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

    /** "Key:   value" lines of {@code dumpe2fs -h}. */
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
