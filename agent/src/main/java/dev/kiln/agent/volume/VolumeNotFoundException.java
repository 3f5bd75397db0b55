package dev.kiln.agent.volume;

/** A volume did not appear within the wait, or a path is not a mount point Kiln made. */
public class VolumeNotFoundException extends RuntimeException {

    public VolumeNotFoundException(String message) {
        super(message);
    }
}
