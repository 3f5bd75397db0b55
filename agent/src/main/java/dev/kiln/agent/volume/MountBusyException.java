package dev.kiln.agent.volume;

import java.util.List;

/** A mount stayed busy: it is still mounted, and these processes hold files on it. */
public class MountBusyException extends VolumeRefusedException {

    private final List<Holder> holders;

    public MountBusyException(String message, List<Holder> holders) {
        super(message);
        this.holders = List.copyOf(holders);
    }

    /** The processes that still hold files on the mount (may be empty: a kernel user). */
    public List<Holder> holders() {
        return holders;
    }
}
