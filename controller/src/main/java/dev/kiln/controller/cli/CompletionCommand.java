package dev.kiln.controller.cli;

import jakarta.inject.Inject;
import picocli.AutoComplete;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Spec;

/** {@code kiln completion}: print a bash/zsh completion script. */
@Command(name = "completion", mixinStandardHelpOptions = true,
        description = {"Print a bash (and zsh) completion script for kiln.",
                "Use: source <(kiln completion)"})
public class CompletionCommand implements Runnable {

    @Inject
    Context context;

    @Spec
    CommandSpec spec;

    @Override
    public void run() {
        context.out().print(AutoComplete.bash("kiln", spec.root().commandLine()));
    }
}
