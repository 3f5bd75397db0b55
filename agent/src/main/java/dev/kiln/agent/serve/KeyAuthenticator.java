package dev.kiln.agent.serve;

import org.apache.sshd.common.AttributeRepository;
import org.apache.sshd.common.config.keys.KeyUtils;
import org.apache.sshd.server.auth.pubkey.PublickeyAuthenticator;
import org.apache.sshd.server.session.ServerSession;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.security.PublicKey;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Public-key authentication for the two fixed user names: {@code owner} against the owner's keys,
 * {@code reader} against the readers'. Any other user name is refused. A broken keys source
 * refuses everyone of that kind, and the reason is logged (once per distinct reason).
 */
public final class KeyAuthenticator implements PublickeyAuthenticator {

    private static final Logger LOG = LoggerFactory.getLogger(KeyAuthenticator.class);

    /** The fingerprint ({@code SHA256:...}) of the key a session authenticated with, for its log lines. */
    public static final AttributeRepository.AttributeKey<String> KEY_FINGERPRINT = new AttributeRepository.AttributeKey<>();

    private final Map<UserKind, AuthorizedKeys> keys;
    private final Map<String, Boolean> logged = new ConcurrentHashMap<>();

    public KeyAuthenticator(Map<UserKind, AuthorizedKeys> keys) {
        this.keys = Map.copyOf(keys);
    }

    @Override
    public boolean authenticate(String username, PublicKey key, ServerSession session) {
        Optional<UserKind> kind = UserKind.ofUserName(username);
        if (kind.isEmpty() || !keys.containsKey(kind.get())) {
            LOG.info("ssh: refused unknown user '{}' from {}", printable(username), session.getClientAddress());
            return false;
        }
        AuthorizedKeys.Loaded loaded = keys.get(kind.get()).load();
        if (loaded.problem().isPresent()) {
            String problem = loaded.problem().get();
            if (logged.putIfAbsent(problem, Boolean.TRUE) == null) {
                LOG.error("ssh: {}", problem);
            }
            return false;
        }
        boolean known = AuthorizedKeys.contains(loaded.keys(), key);
        if (known) {
            // The last key accepted is the one the login signs with (MINA checks it again before the signature).
            session.setAttribute(KEY_FINGERPRINT, KeyUtils.getFingerPrint(key));
        }
        return known;
    }

    /** Checks every source now and returns the problems (for start-up logging). */
    public Map<UserKind, String> problems() {
        Map<UserKind, String> out = new java.util.EnumMap<>(UserKind.class);
        keys.forEach((kind, source) -> source.load().problem().ifPresent(p -> out.put(kind, p)));
        return out;
    }

    private static String printable(String s) {
        StringBuilder b = new StringBuilder();
        for (char c : s.toCharArray()) {
            b.append(c < 0x20 || c == 0x7f ? '?' : c);
            if (b.length() > 64) {
                b.append("...");
                break;
            }
        }
        return b.toString();
    }
}
