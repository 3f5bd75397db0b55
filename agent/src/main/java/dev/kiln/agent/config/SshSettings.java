package dev.kiln.agent.config;

import io.micronaut.context.annotation.ConfigurationProperties;
import io.micronaut.core.annotation.Nullable;
import io.micronaut.core.bind.annotation.Bindable;

import java.util.List;

/**
 * The embedded SSH server that serves outputs over SFTP, scp, rsync and sshfs ({@code kiln.ssh.*}).
 *
 * @param enabled    whether the agent serves at all (default false)
 * @param host       bind address; default {@code 127.0.0.1} in local mode, {@code 0.0.0.0} in ec2 mode
 * @param port       TCP port; default 2222 in local mode, 22 in ec2 mode (the AMI moves or disables
 *                   the system sshd); 0 picks a free one (tests)
 * @param hostKey    the host key file (OpenSSH format, generated once); default
 *                   {@code <state-dir>/ssh/ssh_host_ed25519_key}
 * @param outputs    the tree every user sees read-only as {@code /outputs}
 * @param sources    the tree the owner sees read-write as {@code /sources}; unset: no sources area
 * @param ownerKeys  the owner's public keys: a path to an OpenSSH authorized_keys file, or its text
 * @param readerKeys the readers' public keys, likewise
 * @param user       when the agent is root, the unprivileged account whose file access readers'
 *                   sessions have (default {@code kiln-serve}; see {@code ServeAccounts})
 * @param forwardPorts loopback ports the owner may forward to ({@code ssh -L}), besides services'
 *                   ports; unset: none
 */
@ConfigurationProperties("kiln.ssh")
public record SshSettings(
        @Bindable(defaultValue = "false") boolean enabled,
        @Nullable String host,
        @Nullable Integer port,
        @Nullable String hostKey,
        @Nullable String outputs,
        @Nullable String sources,
        @Nullable String ownerKeys,
        @Nullable String readerKeys,
        @Nullable String user,
        @Nullable List<Integer> forwardPorts) {

    /** The setting that lists the ports the owner may forward to. */
    public static final String FORWARD_PORTS = "kiln.ssh.forward-ports";
}
