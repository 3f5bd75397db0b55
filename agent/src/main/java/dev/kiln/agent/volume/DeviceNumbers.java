package dev.kiln.agent.volume;

/** Linux device numbers: "major:minor" text as sysfs and mountinfo print it, and glibc's dev_t encoding. */
final class DeviceNumbers {

    private DeviceNumbers() {
    }

    static long major(long dev) {
        return ((dev >>> 32) & 0xfffff000L) | ((dev >>> 8) & 0xfffL);
    }

    static long minor(long dev) {
        return ((dev >>> 12) & 0xffffff00L) | (dev & 0xffL);
    }

    /** glibc's makedev: what {@code stat} reports as st_dev / st_rdev. */
    static long encode(long major, long minor) {
        return ((major & 0xfffff000L) << 32) | ((major & 0xfffL) << 8) | ((minor & 0xffffff00L) << 12) | (minor & 0xffL);
    }

    /** Parses "major:minor" (decimal) into an encoded dev_t. */
    static long parse(String majorMinor) {
        String[] parts = majorMinor.strip().split(":");
        if (parts.length != 2) {
            throw new IllegalArgumentException("not a device number: '" + majorMinor + "'");
        }
        return encode(Long.parseLong(parts[0]), Long.parseLong(parts[1]));
    }

    static String text(long dev) {
        return major(dev) + ":" + minor(dev);
    }
}
