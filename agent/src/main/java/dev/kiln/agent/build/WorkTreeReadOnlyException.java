package dev.kiln.agent.build;

import java.nio.file.Path;

/** A tup build was asked for in a work tree on a read-only mount, where tup cannot write its database or outputs. */
public class WorkTreeReadOnlyException extends RuntimeException {

    public WorkTreeReadOnlyException(Path workTree, Path mountPoint) {
        super("the work tree " + workTree + " is on " + mountPoint + ", which is mounted read-only, and tup writes its"
                + " database and the outputs there; nothing was started. Build on an instance that mounts the volume"
                + " read-write (a worker: kiln launch --volume sources:latest --volume builds:latest); a server mounts"
                + " its volumes read-only to serve them");
    }
}
