package dev.kiln.agent.serve;

import java.nio.file.Path;

/**
 * Everything the SSH server is built from (the agent builds it from {@code kiln.ssh.*}; tests
 * build it directly).
 *
 * @param host       bind address
 * @param port       TCP port, 0 for any free one
 * @param hostKey    the host key file (created when missing)
 * @param outputs    the directory served read-only as {@code /outputs}
 * @param sources    the directory the owner may write as {@code /sources}, or null
 * @param ownerKeys  the owner's authorized keys
 * @param readerKeys the readers' authorized keys
 * @param workDir    a directory the server may use for its own files (the empty {@code /})
 * @param sandbox    where rsync runs
 * @param accounts   whose file access each kind of user's session has
 * @param forwardPorts the loopback ports the owner may forward to
 */
public record ServeConfig(String host, int port, Path hostKey, Path outputs, Path sources,
                          AuthorizedKeys ownerKeys, AuthorizedKeys readerKeys, Path workDir,
                          Sandbox sandbox, ServeAccounts accounts, ForwardPorts forwardPorts) {

    /** A server that forwards nothing. */
    public ServeConfig(String host, int port, Path hostKey, Path outputs, Path sources, AuthorizedKeys ownerKeys,
                       AuthorizedKeys readerKeys, Path workDir, Sandbox sandbox, ServeAccounts accounts) {
        this(host, port, hostKey, outputs, sources, ownerKeys, readerKeys, workDir, sandbox, accounts, ForwardPorts.NONE);
    }
}
