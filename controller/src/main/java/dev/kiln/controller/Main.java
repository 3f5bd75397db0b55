package dev.kiln.controller;

import dev.kiln.controller.config.CliEnvironment;

/** The {@code kiln} command's entry point. */
public final class Main {

    private Main() {
    }

    public static void main(String[] args) {
        if (isVersion(args)) {
            // Answered before the Micronaut context and picocli load: the same line as
            // KilnCommand.VersionProvider, in a fraction of the time.
            System.out.println("kiln " + Version.get());
            return;
        }
        System.exit(KilnCli.run(CliEnvironment.system(), args));
    }

    /** Whether the command line asks only for the version ({@code --version} or {@code -V}). */
    static boolean isVersion(String[] args) {
        return args.length == 1 && (args[0].equals("--version") || args[0].equals("-V"));
    }
}
