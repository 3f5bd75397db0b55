package dev.kiln.testkit;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;

class UnreadableDeviceTest {

    @TempDir
    Path dir;

    @Test
    void everyReadFailsWithAnIoErrorAndCloseLeavesNothingBehind() throws Exception {
        Path device;
        try (UnreadableDevice d = UnreadableDevice.create(dir, 8L << 20)) {
            device = d.device();
            try (FileChannel c = FileChannel.open(device, StandardOpenOption.READ)) {
                IOException e = assertThrows(IOException.class, () -> c.read(ByteBuffer.allocate(4096), 0));
                assertEquals("Input/output error", e.getMessage());
            }
        }
        assertFalse(Files.readString(Path.of("/proc/self/mountinfo")).contains(dir.toString()), "host filesystem unmounted");
        String attached = new String(new ProcessBuilder(Prerequisites.requireCommand("losetup", "apt-get install util-linux").toString(), "-a").start().getInputStream().readAllBytes());
        assertFalse(attached.contains(dir.toString()), "loop devices detached: " + attached);
    }
}
