package dev.kiln.agent.volume;

/**
 * Who owns the root directory of a freshly formatted volume (and an overlay's new upper
 * directory): the unprivileged build user, so builds can write there.
 *
 * @param uid its uid
 * @param gid its primary gid
 */
public record Owner(int uid, int gid) {
}
