package dev.kiln.controller.local;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * A new local volume's image is all holes: the agent takes that as proof that it is blank, where
 * any written byte (even a zero at the end) would make it read the whole image first.
 */
class SparseImageTest {

    @TempDir
    Path dir;

    @Test
    void aNewImageIsGrownWithoutWritingAByte() throws Exception {
        Path image = Files.createFile(dir.resolve("volume.img"));
        assertEquals(1L << 30, LocalVolumes.extendSparse(image, 1));
        assertEquals(1L << 30, Files.size(image));
        assertEquals("0", allocatedBlocks(image), "no block of the image is allocated");
    }

    @Test
    void anImageIsNeverShrunk() throws Exception {
        Path image = Files.createFile(dir.resolve("volume.img"));
        LocalVolumes.extendSparse(image, 2);
        assertEquals(2L << 30, LocalVolumes.extendSparse(image, 1));
        assertEquals(2L << 30, LocalVolumes.extendSparse(image, 0));
    }

    private static String allocatedBlocks(Path file) throws Exception {
        Process p = new ProcessBuilder("stat", "-c", "%b", file.toString()).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes()).strip();
        assertEquals(0, p.waitFor(), out);
        return out;
    }
}
