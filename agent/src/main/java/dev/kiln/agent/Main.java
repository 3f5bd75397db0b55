package dev.kiln.agent;

/** kiln-agent's entry point. */
public final class Main {

    private Main() {
    }

    public static void main(String[] args) {
        int code = new AgentLauncher(System.getenv(), System.err).run();
        if (code != 0) {
            System.exit(code);
        }
    }
}
