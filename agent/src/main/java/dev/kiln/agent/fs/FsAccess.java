package dev.kiln.agent.fs;

import java.io.IOException;

/**
 * Whose file access an operation runs with: an account's ({@link FsCredentials}), or the agent's
 * own when it is not root and so has nothing to give up.
 */
public interface FsAccess {

    /** Runs {@code call} with this access. */
    <T> T run(FsCredentials.IoCall<T> call) throws IOException;

    /** The uid programs started for this access run as, or -1 for the agent's own. */
    int uid();

    /** The gid likewise. */
    int gid();

    /** The account {@code uid}/{@code gid}'s file access (the agent must be root). */
    static FsAccess of(int uid, int gid) {
        return new FsAccess() {
            @Override
            public <T> T run(FsCredentials.IoCall<T> call) throws IOException {
                return FsCredentials.as(uid, gid, call);
            }

            @Override
            public int uid() {
                return uid;
            }

            @Override
            public int gid() {
                return gid;
            }
        };
    }

    /** The agent's own access, unchanged (when it is not root). */
    static FsAccess own() {
        return new FsAccess() {
            @Override
            public <T> T run(FsCredentials.IoCall<T> call) throws IOException {
                return call.call();
            }

            @Override
            public int uid() {
                return -1;
            }

            @Override
            public int gid() {
                return -1;
            }
        };
    }
}
