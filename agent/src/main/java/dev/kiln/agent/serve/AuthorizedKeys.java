package dev.kiln.agent.serve;

import org.apache.sshd.common.config.keys.AuthorizedKeyEntry;
import org.apache.sshd.common.config.keys.KeyUtils;
import org.apache.sshd.common.config.keys.PublicKeyEntryResolver;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.PublicKey;
import java.security.interfaces.RSAPublicKey;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.Set;

/**
 * The public keys one kind of user may log in with, from an OpenSSH {@code authorized_keys} file
 * or its text given inline (agent settings, user data). Read on every login attempt, so a changed
 * file applies at once.
 *
 * <p>Fail closed: if the file cannot be read, or any line is malformed, has an unsupported key type
 * (ed25519, RSA of at least 2048 bits and ECDSA are supported) or an option Kiln does not enforce
 * (such as {@code from=} or {@code command=}), the whole source is treated as allowing nobody and
 * {@link Loaded#problem()} says why.
 */
public final class AuthorizedKeys {

    static {
        JdkEd25519.install(); // before MINA's SecurityUtils reads its registrars
    }

    /** Options that only forbid what the server never allows anyway. */
    private static final Set<String> HARMLESS_OPTIONS = Set.of("restrict", "no-pty", "no-port-forwarding",
            "no-agent-forwarding", "no-x11-forwarding", "no-user-rc");

    private static final Set<String> KEY_TYPES = Set.of("ssh-ed25519", "ssh-rsa", "ecdsa-sha2-nistp256",
            "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521");

    /**
     * What a source yielded.
     *
     * @param keys    the keys allowed (empty when there is a problem)
     * @param problem why nobody is allowed, if so
     */
    public record Loaded(List<PublicKey> keys, Optional<String> problem) {
        static Loaded failed(String problem) {
            return new Loaded(List.of(), Optional.of(problem));
        }
    }

    private final String setting;
    private final String value;

    /**
     * @param setting the setting it came from, for messages (e.g. {@code kiln.ssh.owner-keys})
     * @param value   an absolute path to an authorized_keys file, or the file's text; null: no keys
     */
    public AuthorizedKeys(String setting, String value) {
        this.setting = setting;
        this.value = value;
    }

    /** True when the value names a file rather than holding the keys inline. */
    public static boolean isPath(String value) {
        String v = value.strip();
        return !v.contains("\n") && !v.contains(" ") && v.startsWith("/");
    }

    /** A description for logs: the file, or "inline keys". */
    public String describe() {
        if (value == null || value.isBlank()) {
            return setting + " (unset)";
        }
        return isPath(value) ? setting + " (" + value.strip() + ")" : setting + " (inline keys)";
    }

    /** Reads and checks the keys now. */
    public Loaded load() {
        if (value == null || value.isBlank()) {
            return new Loaded(List.of(), Optional.empty());
        }
        String text;
        if (isPath(value)) {
            try {
                text = Files.readString(Path.of(value.strip()), StandardCharsets.UTF_8);
            } catch (IOException | RuntimeException e) {
                return Loaded.failed(describe() + ": cannot read the file (" + e.getClass().getSimpleName()
                        + (e.getMessage() == null ? "" : ": " + e.getMessage()) + "); refusing every key");
            }
        } else {
            text = value;
        }
        return parse(describe(), text);
    }

    /** Parses authorized_keys text; any bad line fails the whole text. */
    static Loaded parse(String source, String text) {
        List<PublicKey> keys = new ArrayList<>();
        int lineNo = 0;
        for (String raw : text.split("\n", -1)) {
            lineNo++;
            String line = raw.strip();
            if (line.isEmpty() || line.startsWith("#")) {
                continue;
            }
            String where = source + " line " + lineNo;
            AuthorizedKeyEntry entry;
            try {
                entry = AuthorizedKeyEntry.parseAuthorizedKeyEntry(line);
            } catch (RuntimeException e) {
                return Loaded.failed(where + " is malformed (" + e.getMessage() + "); refusing every key");
            }
            if (entry == null) {
                return Loaded.failed(where + " is malformed; refusing every key");
            }
            if (!KEY_TYPES.contains(entry.getKeyType())) {
                return Loaded.failed(where + ": key type '" + entry.getKeyType()
                        + "' is not supported (use ssh-ed25519 or ssh-rsa); refusing every key");
            }
            for (String option : entry.getLoginOptions().keySet()) {
                if (!HARMLESS_OPTIONS.contains(option.toLowerCase(java.util.Locale.ROOT))) {
                    return Loaded.failed(where + ": option '" + option + "' is not supported by kiln-agent; "
                            + "refusing every key");
                }
            }
            PublicKey key;
            try {
                key = entry.resolvePublicKey(null, PublicKeyEntryResolver.FAILING);
            } catch (IOException | java.security.GeneralSecurityException | RuntimeException e) {
                return Loaded.failed(where + ": the key cannot be decoded (" + e.getMessage() + "); refusing every key");
            }
            if (key == null) {
                return Loaded.failed(where + ": the key cannot be decoded; refusing every key");
            }
            if (key instanceof RSAPublicKey rsa && rsa.getModulus().bitLength() < 2048) {
                return Loaded.failed(where + ": RSA keys need at least 2048 bits; refusing every key");
            }
            keys.add(key);
        }
        return new Loaded(List.copyOf(keys), Optional.empty());
    }

    /** True when {@code offered} is one of {@code keys}. */
    static boolean contains(List<PublicKey> keys, PublicKey offered) {
        for (PublicKey k : keys) {
            if (KeyUtils.compareKeys(k, offered)) {
                return true;
            }
        }
        return false;
    }
}
