package dev.kiln.controller.local;

import java.io.IOException;
import java.nio.file.FileVisitResult;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.SimpleFileVisitor;
import java.nio.file.attribute.BasicFileAttributes;
import java.nio.file.attribute.FileTime;

/**
 * What a local volume looks like to the writes it has had: for an image, its size and change time
 * (ctime, to the nanosecond, which every write through the loop device moves); for a directory,
 * the number of entries and the newest change time of any of them (a write, a new or removed
 * file, a rename or a chmod all move one). Two equal stamps mean nothing was written in between;
 * the fleet records one when a volume is attached and when a snapshot of it is copied, and
 * deletes an ended instance's volume when its stamp still equals one of those (an ext4 image
 * whose stamp moved goes only by {@link ImageProof}).
 */
final class VolumeStamp {

    private VolumeStamp() {
    }

    /**
     * How far the newest change time must lie behind the clock for a stamp to count: the kernel
     * stamps changes with a coarse clock (one tick, a few milliseconds), so a write in the same
     * tick as the newest one seen could leave the stamp as it was. Once the clock is past that
     * tick, every later write moves the stamp.
     */
    private static final java.time.Duration SETTLE = java.time.Duration.ofMillis(50);

    /** The stamp of a volume directory (holding volume.img or data/), or null when it cannot be read whole. */
    static String of(Path volumeDir) {
        for (int attempt = 0; attempt < 100; attempt++) {
            java.time.Instant[] newest = {java.time.Instant.EPOCH};
            String stamp = raw(volumeDir, newest);
            if (stamp == null || newest[0].plus(SETTLE).isBefore(java.time.Instant.now())) {
                return stamp;
            }
            try {
                Thread.sleep(SETTLE.toMillis() + 10);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return null;
            }
        }
        return null; // written all the time: no stamp, so it never counts as unchanged
    }

    private static String raw(Path volumeDir, java.time.Instant[] newest) {
        try {
            // The same stamp an agent records in the snapshots it takes of an image.
            String image = dev.kiln.snapshot.LocalSnapshotFormat.imageStamp(volumeDir.resolve("volume.img"), newest);
            if (image != null) {
                return image;
            }
            Path data = volumeDir.resolve("data");
            if (Files.isDirectory(data, LinkOption.NOFOLLOW_LINKS)) {
                return "dir:" + tree(data, newest);
            }
            return null;
        } catch (IOException | UnsupportedOperationException e) {
            return null;
        }
    }

    private static String text(java.time.Instant i) {
        return i.getEpochSecond() + "." + String.format("%09d", i.getNano());
    }

    /** Entries and newest ctime of a tree, never following a link. */
    private static String tree(Path root, java.time.Instant[] newest) throws IOException {
        long[] count = {0};
        Files.walkFileTree(root, new SimpleFileVisitor<>() {
            @Override
            public FileVisitResult preVisitDirectory(Path dir, BasicFileAttributes attrs) throws IOException {
                see(dir);
                return FileVisitResult.CONTINUE;
            }

            @Override
            public FileVisitResult visitFile(Path file, BasicFileAttributes attrs) throws IOException {
                see(file);
                return FileVisitResult.CONTINUE;
            }

            private void see(Path p) throws IOException {
                count[0]++;
                java.time.Instant t = ((FileTime) Files.getAttribute(p, "unix:ctime", LinkOption.NOFOLLOW_LINKS)).toInstant();
                if (t.isAfter(newest[0])) {
                    newest[0] = t;
                }
            }
        });
        return count[0] + ":" + text(newest[0]);
    }
}
