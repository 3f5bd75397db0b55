package dev.kiln.agent.serve;

import dev.kiln.agent.build.BuildUser;
import dev.kiln.agent.fs.FsAccess;

/**
 * Whose file access each kind of user's session has, so that a fault in the path rules cannot
 * hand a client root's access. When the agent is root, a reader's session reads with a dedicated
 * unprivileged account's access ({@code kiln.ssh.user}, default {@code kiln-serve}: neither root
 * nor the build user, whose processes builds control), and the owner's session acts with the
 * build user's access: what the owner may do through a build anyway, and what makes uploads the
 * build user's, so builds can use them. When the agent is not root, both keep its own access.
 *
 * @param reader the access of readers' sessions
 * @param owner  the access of the owner's sessions
 */
public record ServeAccounts(FsAccess reader, FsAccess owner) {

    /** The default dedicated account for readers. */
    public static final String DEFAULT_USER = "kiln-serve";

    public FsAccess of(UserKind kind) {
        return kind == UserKind.OWNER ? owner : reader;
    }

    /** The agent's own access for both (an agent that is not root). */
    public static ServeAccounts own() {
        return new ServeAccounts(FsAccess.own(), FsAccess.own());
    }

    /**
     * The accounts for this agent: {@link #own()} unless it is root.
     *
     * @param serveUser the readers' account ({@code kiln.ssh.user}), null for the default
     * @param buildUser the build user
     * @throws IllegalStateException naming the setting and what to do, when the readers' account
     *                               is missing, is root, or is the build user
     */
    public static ServeAccounts resolve(String serveUser, BuildUser buildUser) {
        if (!BuildUser.agentIsRoot()) {
            return own();
        }
        String name = serveUser == null || serveUser.isBlank() ? DEFAULT_USER : serveUser;
        BuildUser account = BuildUser.lookup(name).orElseThrow(() -> new IllegalStateException(
                "kiln.ssh.user: the account '" + name + "' that readers' sessions run as does not exist; create it"
                        + " (useradd --system --no-create-home --shell /usr/sbin/nologin " + name + ")"));
        if (account.uid() == 0 || account.uid() == buildUser.uid()) {
            throw new IllegalStateException("kiln.ssh.user: '" + name + "' is " + (account.uid() == 0 ? "root" : "the build user")
                    + "; readers' sessions need an unprivileged account of their own (default " + DEFAULT_USER + ")");
        }
        return new ServeAccounts(FsAccess.of(account.uid(), account.gid()), FsAccess.of(buildUser.uid(), buildUser.gid()));
    }
}
