package dev.kiln.controller;

import dev.kiln.controller.config.CliEnvironment;

/** The {@code kiln} command's entry point. */
public final class Main {

    private Main() {
    }

    public static void main(String[] args) {
        System.exit(KilnCli.run(CliEnvironment.system(), args));
    }
}
