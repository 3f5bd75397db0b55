package dev.kiln.controller.local;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * The loop devices that carry root's local volumes: attaching a volume's image, finding the
 * devices over an image, and detaching them, all with losetup.
 */
final class LoopDevices {

    /** How long {@link #detachAll} waits for the kernel to let go of the devices. */
    private static final long RELEASE_SECONDS = 10;

    private LoopDevices() {
    }

    /** Whether losetup is installed where the local provider looks for it. */
    static boolean installed() {
        return Files.isExecutable(Path.of("/usr/sbin/losetup")) || Files.isExecutable(Path.of("/sbin/losetup"));
    }

    /** Attaches an image to the first free loop device and returns the device's name. */
    static String attach(Path image) throws IOException {
        return LocalTools.run("losetup", "--find", "--show", image.toString()).strip();
    }

    /** Detaches one device; a failure leaves it to {@code kiln prune}, which finds it by its image. */
    static void detachQuietly(String device) {
        LocalTools.runQuietly("losetup", "-d", device);
    }

    /** Detaches one device, failing with losetup's words. */
    static void detach(String device) throws IOException {
        LocalTools.run("losetup", "-d", device);
    }

    /**
     * Detaches every loop device over this image and waits (at most 10 s) until the kernel has let
     * go of them: a device someone still holds open (udev's probe of it, say) is only marked to
     * detach on its last close, and a volume whose image is still attached is kept, not deleted.
     */
    static void detachAll(Path image) {
        long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(RELEASE_SECONDS);
        List<String> left = over(image);
        for (String device : left) {
            if (device.startsWith("/dev/")) {
                detachQuietly(device);
            }
        }
        while (!left.isEmpty() && System.nanoTime() < end) {
            try {
                Thread.sleep(50);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return;
            }
            left = over(image);
        }
    }

    /**
     * The loop devices whose backing file is this image. When losetup cannot say, one entry that
     * names the failure: every caller keeps or refuses on a non-empty list, so not knowing never
     * counts as detached.
     */
    static List<String> over(Path image) {
        if (!Files.exists(image)) {
            return List.of();
        }
        try {
            return LocalTools.run("losetup", "--noheadings", "--output", "NAME", "--associated", image.toString()).lines()
                    .map(String::strip).filter(l -> !l.isEmpty()).toList();
        } catch (IOException e) {
            return List.of("an unknown device (losetup --associated failed: " + e.getMessage() + ")");
        }
    }

    /**
     * Every attached loop device and its backing file, as losetup lists them (a deleted backing
     * file without losetup's " (deleted)" suffix).
     *
     * @throws IOException when losetup cannot list them (no loop support, or not allowed to)
     */
    static Map<String, String> all() throws IOException {
        Map<String, String> out = new LinkedHashMap<>();
        String list = LocalTools.run("losetup", "--list", "--noheadings", "--raw", "--output", "NAME,BACK-FILE");
        for (String line : list.lines().toList()) {
            int space = line.indexOf(' ');
            if (space < 0) {
                continue;
            }
            // losetup --raw escapes spaces as \x20; a deleted backing file ends with " (deleted)"
            out.put(line.substring(0, space), line.substring(space + 1).replace("\\x20", " ").replaceFirst(" \\(deleted\\)$", ""));
        }
        return out;
    }
}
