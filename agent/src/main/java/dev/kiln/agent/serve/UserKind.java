package dev.kiln.agent.serve;

import java.util.Locale;
import java.util.Optional;

/**
 * The two kinds of SSH user, each with a fixed user name: {@code reader} sees {@code /outputs}
 * read-only; {@code owner} also sees {@code /sources} read-write (that is how a collection is
 * uploaded). Any other user name is refused at authentication.
 */
public enum UserKind {
    OWNER,
    READER;

    /** The SSH user name: {@code owner} or {@code reader}. */
    public String userName() {
        return name().toLowerCase(Locale.ROOT);
    }

    /** The kind a user name stands for; empty for every other name. */
    public static Optional<UserKind> ofUserName(String name) {
        for (UserKind kind : values()) {
            if (kind.userName().equals(name)) {
                return Optional.of(kind);
            }
        }
        return Optional.empty();
    }
}
