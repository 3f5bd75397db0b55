package dev.kiln.agent.startup;

/** Exceptions as start-up messages: one line each, naming the setting where the cause does. */
public final class Messages {

    private Messages() {
    }

    /** The innermost message: the one that names the setting. */
    public static String rootMessage(Throwable e) {
        Throwable root = root(e);
        return root.getMessage() == null ? root.toString() : root.getMessage();
    }

    /** The first line of the outermost message and the root cause's message. */
    public static String describe(Throwable e) {
        Throwable root = root(e);
        String top = e.getMessage() == null ? e.toString() : e.getMessage().lines().findFirst().orElse("");
        if (root == e) {
            return top;
        }
        String cause = root.getMessage() == null ? root.toString() : root.getMessage().lines().findFirst().orElse("");
        return top.contains(cause) ? top : top + ": " + cause;
    }

    private static Throwable root(Throwable e) {
        Throwable root = e;
        while (root.getCause() != null && root.getCause() != root) {
            root = root.getCause();
        }
        return root;
    }
}
