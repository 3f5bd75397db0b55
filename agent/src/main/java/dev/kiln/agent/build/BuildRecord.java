package dev.kiln.agent.build;

import java.time.Instant;

/**
 * A build as the agent records it. Immutable; changes make a new record.
 *
 * @param id        the build id, e.g. b-20261121-235959-3f2a
 * @param spec      what was asked for
 * @param state     where it is
 * @param createdAt when it was requested
 * @param startedAt when its process started (null before)
 * @param endedAt   when it ended (null before)
 * @param exitCode  the process's exit status (null unless it exited)
 * @param done      tup progress: commands done
 * @param total     tup progress: commands in this update
 * @param logSize   bytes in its log
 */
public record BuildRecord(String id, BuildSpec spec, BuildState state, Instant createdAt, Instant startedAt,
                          Instant endedAt, Integer exitCode, long done, long total, long logSize) {

    public BuildRecord withState(BuildState s) {
        return new BuildRecord(id, spec, s, createdAt, startedAt, endedAt, exitCode, done, total, logSize);
    }

    public BuildRecord started(Instant at) {
        return new BuildRecord(id, spec, BuildState.RUNNING, createdAt, at, endedAt, exitCode, done, total, logSize);
    }

    public BuildRecord ended(BuildState s, Instant at, Integer code, long size) {
        return new BuildRecord(id, spec, s, createdAt, startedAt, at, code, done, total, size);
    }

    public BuildRecord progress(long d, long t) {
        return new BuildRecord(id, spec, state, createdAt, startedAt, endedAt, exitCode, d, t, logSize);
    }

    public BuildRecord logSize(long size) {
        return new BuildRecord(id, spec, state, createdAt, startedAt, endedAt, exitCode, done, total, size);
    }
}
