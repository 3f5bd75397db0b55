package dev.kiln.agent.startup;

import java.io.PrintStream;

/**
 * Where start-up speaks before (and besides) the agent log: standard error, which systemd's
 * journal keeps. Each line starts with "kiln-agent: ".
 */
public record Console(PrintStream err) {

    public void print(String message) {
        err.println("kiln-agent: " + message);
    }
}
