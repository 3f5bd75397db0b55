package dev.kiln.testkit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class LoopDeviceTest {

    private static final long SIZE = 16L << 20;
    private static final long OFFSET = 1L << 20;

    @TempDir
    Path dir;

    @Test
    void patternWrittenToTheDeviceLandsInTheBackingFileAndReadsBack() throws Exception {
        byte[] pattern = new byte[256 << 10];
        new Random(42).nextBytes(pattern);

        try (LoopDevice loop = LoopDevice.create(dir, SIZE)) {
            assertTrue(loop.device().toString().matches("/dev/loop\\d+"), loop.device().toString());
            try (FileChannel device = FileChannel.open(loop.device(), StandardOpenOption.WRITE)) {
                device.write(ByteBuffer.wrap(pattern), OFFSET);
                device.force(true); // fsync on the device flushes through to the backing file
            }

            assertArrayEquals(pattern, read(loop.device(), OFFSET, pattern.length));
            assertArrayEquals(pattern, read(loop.backingFile(), OFFSET, pattern.length));
        }
    }

    @Test
    void deviceHasTheRequestedSizeAndTheFileStartsSparse() throws Exception {
        try (LoopDevice loop = LoopDevice.create(dir, SIZE)) {
            String name = loop.device().getFileName().toString();
            long sectors = Long.parseLong(Files.readString(Path.of("/sys/class/block", name, "size")).strip());

            assertEquals(SIZE, sectors * 512);
            assertEquals(SIZE, Files.size(loop.backingFile()));
            String[] allocated = Commands.run("stat", "-c", "%b %B", loop.backingFile().toString())
                    .orThrow().stdout().strip().split(" ");
            long allocatedBytes = Long.parseLong(allocated[0]) * Long.parseLong(allocated[1]);
            assertTrue(allocatedBytes < SIZE, "backing file is not sparse: " + allocatedBytes + " bytes allocated");
        }
    }

    @Test
    void closeDetachesTheDeviceAndDeletesTheBackingFile() {
        LoopDevice loop = LoopDevice.create(dir, SIZE);
        Path file = loop.backingFile();
        assertFalse(Commands.run("losetup", "-j", file.toString()).orThrow().stdout().isBlank());

        loop.close();

        assertEquals("", Commands.run("losetup", "-j", file.toString()).orThrow().stdout());
        assertFalse(Files.exists(file), file + " still exists");
        loop.close(); // a second close is harmless
    }

    @Test
    void twoDevicesAreDistinct() {
        try (LoopDevice first = LoopDevice.create(dir, SIZE); LoopDevice second = LoopDevice.create(dir, SIZE)) {
            assertFalse(first.device().equals(second.device()));
            assertFalse(first.backingFile().equals(second.backingFile()));
        }
    }

    private static byte[] read(Path path, long offset, int length) throws Exception {
        ByteBuffer buffer = ByteBuffer.allocate(length);
        try (FileChannel channel = FileChannel.open(path, StandardOpenOption.READ)) {
            while (buffer.hasRemaining()) {
                if (channel.read(buffer, offset + buffer.position()) < 0) {
                    break;
                }
            }
        }
        return buffer.array();
    }
}
