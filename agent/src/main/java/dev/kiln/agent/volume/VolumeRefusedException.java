package dev.kiln.agent.volume;

/**
 * A volume request is valid but the state of the device, filesystem or mount forbids it. The
 * message says what was found and whether anything was written (almost always: nothing).
 */
public class VolumeRefusedException extends RuntimeException {

    public VolumeRefusedException(String message) {
        super(message);
    }
}
