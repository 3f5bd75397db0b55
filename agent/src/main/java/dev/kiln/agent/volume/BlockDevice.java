package dev.kiln.agent.volume;

import java.nio.file.Path;

/**
 * A whole-disk block device as sysfs describes it.
 *
 * @param name      the kernel name, e.g. {@code nvme1n1} or {@code loop3}
 * @param path      its node under the dev root, e.g. {@code /dev/nvme1n1}
 * @param number    its device number, "major:minor"
 * @param sizeBytes its size
 * @param volumeId  the EBS volume id from the NVMe controller's serial, empty when the device
 *                  does not identify itself as an EBS volume
 */
public record BlockDevice(String name, Path path, String number, long sizeBytes, String volumeId) {

    /** "/dev/nvme1n1 (vol-0123...)" or "/dev/loop3", for messages. */
    public String describe() {
        return volumeId.isEmpty() ? path.toString() : path + " (" + volumeId + ")";
    }
}
