package dev.kiln.agent.volume;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;

/**
 * Real volumes for tests outside this package: a loop device over an image file of the test's
 * choosing, formatted and mounted by a real {@link VolumeService} (see {@link Fixture}).
 */
public final class TestVolumes implements AutoCloseable {

    private final Fixture fx;
    private final VolumeService service;

    public TestVolumes(Path dir) throws IOException {
        fx = new Fixture(dir);
        service = fx.service(Duration.ofSeconds(2), List.of());
    }

    public VolumeService service() {
        return service;
    }

    /** The fake sysfs root, which shows this test's loop devices. */
    public Path sysfsRoot() {
        return fx.dir.resolve("sys");
    }

    /** The agent state directory the service uses. */
    public Path stateDir() {
        return fx.state;
    }

    /**
     * Creates a sparse image of {@code bytes} at {@code image} holding an empty ext4 filesystem
     * whose root belongs to {@code owner} ("UID:GID"), attaches it and mounts it at
     * {@code mountPoint}; with a {@code volumeId}, the fake sysfs shows the device as that EBS volume.
     *
     * @return the loop device
     */
    public Path mountNewImage(Path image, long bytes, Path mountPoint, String owner, String volumeId) throws Exception {
        Files.createDirectories(image.getParent());
        try (java.io.RandomAccessFile f = new java.io.RandomAccessFile(image.toFile(), "rw")) {
            f.setLength(bytes);
        }
        Fixture.sh("mkfs.ext4", "-q", "-F", "-E", "root_owner=" + owner, image.toString());
        Path device = fx.loopOver(image).device();
        if (volumeId != null) {
            fx.showAsEbs(device, volumeId);
        }
        service.mount(Fixture.spec(device, mountPoint, false));
        return device;
    }

    @Override
    public void close() throws Exception {
        service.close();
        fx.close();
    }
}
