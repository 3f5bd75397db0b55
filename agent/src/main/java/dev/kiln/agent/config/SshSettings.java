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
@ConfigurationProperties(SshSettings.PREFIX)
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

    static final String PREFIX = "kiln.ssh";

    /** The setting that lists the ports the owner may forward to. */
    public static final String FORWARD_PORTS = "kiln.ssh.forward-ports";

    static final SettingRules RULES = SettingRules.of(SshSettings.class, PREFIX)
            .add("enabled", "true or false", SettingCheck.BOOLEAN, SettingCheck::any)
            .add("host", "a bind address such as 127.0.0.1 or 0.0.0.0", SettingCheck.TEXT, SettingCheck::filled)
            .add("port", "a TCP port 0-65535", SettingCheck.NUMBER, SettingCheck.range(0, 65535, "is out of range"))
            .add("hostKey", "an absolute path", SettingCheck.TEXT, SettingCheck::absolute)
            .add("outputs", "an absolute path", SettingCheck.TEXT, SettingCheck::absolute)
            .add("sources", "an absolute path", SettingCheck.TEXT, SettingCheck::absolute)
            .add("ownerKeys", "an authorized_keys file path or its text", SettingCheck.TEXT, SettingCheck::keys)
            .add("readerKeys", "an authorized_keys file path or its text", SettingCheck.TEXT, SettingCheck::keys)
            .add("user", "an unprivileged user name", SettingCheck.TEXT, SettingCheck::filled)
            .add("forwardPorts", "a list of TCP ports 1-65535 such as [7888, 8888]", SettingCheck.PORT_NUMBER,
                    SettingCheck.range(1, 65535, "is not a TCP port 1-65535"));

    public SshSettings {
        RULES.check(enabled, host, port, hostKey, outputs, sources, ownerKeys, readerKeys, user, forwardPorts);
    }
}
