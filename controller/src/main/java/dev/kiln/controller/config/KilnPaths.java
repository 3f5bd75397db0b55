package dev.kiln.controller.config;

import java.nio.file.Path;

/**
 * Where the controller keeps its files, following the XDG base directory spec:
 * configuration and keys in {@code $XDG_CONFIG_HOME/kiln} (default {@code ~/.config/kiln}),
 * local agents' state in {@code $XDG_STATE_HOME/kiln} (default {@code ~/.local/state/kiln}).
 * {@code KILN_CONFIG_DIR} and {@code KILN_STATE_DIR} override both.
 */
public record KilnPaths(Path configDir, Path stateDir) {

    public static KilnPaths from(CliEnvironment env) {
        Path config = env.get("KILN_CONFIG_DIR").map(Path::of)
                .orElseGet(() -> env.get("XDG_CONFIG_HOME").map(p -> Path.of(p, "kiln"))
                        .orElseGet(() -> env.home().resolve(".config").resolve("kiln")));
        Path state = env.get("KILN_STATE_DIR").map(Path::of)
                .orElseGet(() -> env.get("XDG_STATE_HOME").map(p -> Path.of(p, "kiln"))
                        .orElseGet(() -> env.home().resolve(".local").resolve("state").resolve("kiln")));
        return new KilnPaths(config.toAbsolutePath(), state.toAbsolutePath());
    }

    /** The controller's configuration file. */
    public Path configFile() {
        return configDir.resolve("config.yml");
    }

    /** The fleet CA certificate (public). */
    public Path caCert() {
        return configDir.resolve("fleet-ca.crt");
    }

    /** The fleet CA private key (0600). */
    public Path caKey() {
        return configDir.resolve("fleet-ca.key");
    }

    /** The controller's client certificate. */
    public Path clientCert() {
        return configDir.resolve("controller.crt");
    }

    /** The controller's client key (0600). */
    public Path clientKey() {
        return configDir.resolve("controller.key");
    }

    /** The controller's SSH private key (ed25519, OpenSSH format, 0600). */
    public Path sshKey() {
        return configDir.resolve("id_ed25519");
    }

    /** The controller's SSH public key. */
    public Path sshPublicKey() {
        return configDir.resolve("id_ed25519.pub");
    }

    /**
     * The known_hosts file Kiln manages: the agents' SSH host keys, written from their gRPC Status
     * by {@code kiln ssh-config}, {@code kiln pull} and {@code kiln push}.
     */
    public Path knownHosts() {
        return configDir.resolve("known_hosts");
    }

    /** The local agent's directory (pid file, log, settings, TLS material, agent state). */
    public Path localAgentDir() {
        return stateDir.resolve("local-agent");
    }
}
