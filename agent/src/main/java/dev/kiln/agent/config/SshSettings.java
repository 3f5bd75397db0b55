package dev.kiln.agent.config;

import io.micronaut.context.annotation.ConfigurationProperties;
import io.micronaut.core.annotation.Introspected;
import jakarta.validation.constraints.Max;
import jakarta.validation.constraints.Min;
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
@Introspected
@ConfigurationProperties("kiln.ssh")
public record SshSettings(
        @Accepts("true or false") @Bindable(defaultValue = "false") boolean enabled,
        @Accepts("a bind address such as 127.0.0.1 or 0.0.0.0") @Filled @Nullable String host,
        @Accepts("a TCP port 0-65535") @Min(value = 0, message = "is out of range") @Max(value = 65535, message = "is out of range")
        @Nullable Integer port,
        @Accepts("an absolute path") @AbsolutePath @Nullable String hostKey,
        @Accepts("an absolute path") @AbsolutePath @Nullable String outputs,
        @Accepts("an absolute path") @AbsolutePath @Nullable String sources,
        @Accepts("an authorized_keys file path or its text") @Filled @AuthorizedKeys @Nullable String ownerKeys,
        @Accepts("an authorized_keys file path or its text") @Filled @AuthorizedKeys @Nullable String readerKeys,
        @Accepts("an unprivileged user name") @Filled @Nullable String user,
        @Accepts("a list of TCP ports 1-65535 such as [7888, 8888]") @Nullable
        List<@Min(value = 1, message = "is not a TCP port 1-65535") @Max(value = 65535, message = "is not a TCP port 1-65535")
                Integer> forwardPorts) {

    /** The setting that lists the ports the owner may forward to. */
    public static final String FORWARD_PORTS = "kiln.ssh.forward-ports";
}
